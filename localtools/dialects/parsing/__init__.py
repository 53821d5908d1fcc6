"""Streaming tool-call parsers generated from a `DialectSpec`, one per call shape.

    core.py          ParserCore: feed/finish, content and reasoning, markers and
                     holdback, sections, a call's begin/commit/rollback/end
    json_object.py   JsonObjectReader: a call written as one JSON object (all shapes meet one)
    python_tag.py    PythonTagReader: what follows a python tag; raw code for a python tool
    json_shape.py    JsonParser     shape "json"
    tag_shape.py     TagParser      shape "tag_json" (and the call header of the next two)
    tagged_shape.py  TaggedParser   shape "tagged"
    python_shape.py  PythonParser   shape "python"
    schema.py        what the offered tools' schemas say (also used by the grammar)

The shape is chosen once, here, by the parser's class; the core reaches it
only through the hooks at the end of `ParserCore`.
"""

from __future__ import annotations

from typing import Any

from localtools.dialects.parsing.core import ParserCore
from localtools.dialects.parsing.json_shape import JsonParser
from localtools.dialects.parsing.python_shape import PythonParser
from localtools.dialects.parsing.tag_shape import TagParser
from localtools.dialects.parsing.tagged_shape import TaggedParser
from localtools.dialects.spec import DialectSpec, Shape

PARSERS: dict[Shape, type[ParserCore]] = {
    "json": JsonParser,
    "tag_json": TagParser,
    "tagged": TaggedParser,
    "python": PythonParser,
}


def make_parser(
    spec: DialectSpec,
    tools: list[dict[str, Any]] | None,
    prompt_tail: str = "",
    stream: bool = True,
) -> ParserCore:
    """The streaming parser for calls written as `spec` says (see ParserCore for `stream`)."""
    return PARSERS[spec.shape](spec, tools, prompt_tail, stream)


__all__ = ["PARSERS", "JsonParser", "ParserCore", "PythonParser", "TagParser", "TaggedParser", "make_parser"]
