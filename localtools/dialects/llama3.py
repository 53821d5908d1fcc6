"""Llama 3.1 / 3.2 / 3.3: a call is the whole reply, bare JSON.

``{"name": NAME, "parameters": {…}}`` at the start of the reply (several may be
joined by ``;``), or after ``<|python_tag|>``; raw code after ``<|python_tag|>``
goes to the python/code_interpreter tool.
"""

from __future__ import annotations

from localtools.dialects.registry import register
from localtools.dialects.spec import DialectSpec
from localtools.dialects.specdialect import Markers, SpecDialect

SPEC = DialectSpec(
    name="llama3",
    shape="json",
    bare_json=True,
    name_key="name",
    args_keys=("parameters", "arguments"),
    call_sep="; ",
    python_tag="<|python_tag|>",
)

class Llama3(SpecDialect):
    """Llama 3.x headers (or Llama 4's, whose JSON tool format is the same)."""

    def detect(self, template: str) -> list[str] | None:
        headers = [h for h in ("<|start_header_id|>", "<|header_start|>") if h in template]
        if not headers:
            return None
        return super().detect(template.replace("<|header_start|>", "<|start_header_id|>"))


DIALECT = register(
    Llama3(
        SPEC,
        Markers(all_of=("<|start_header_id|>",), any_of=("<|python_tag|>", "ipython", "\"parameters\"", "function name")),
        "Llama 3.x: bare JSON {name, parameters}; <|python_tag|>",
    )
)
