"""Apriel 1.5 / 1.6: ``<tool_calls>[{"name", "arguments", "id"}]</tool_calls>``.

Apriel 1.6's prompt opens its reasoning ("Here are my reasoning steps:") and
the answer follows ``[BEGIN FINAL RESPONSE]``; ``[END FINAL RESPONSE]`` is dropped.
"""

from __future__ import annotations

from localtools.dialects.registry import register
from localtools.dialects.spec import DialectSpec, ReasoningSpec
from localtools.dialects.specdialect import Markers, SpecDialect

SPEC = DialectSpec(
    name="apriel",
    shape="json",
    section_start="<tool_calls>",
    section_end="</tool_calls>",
    array=True,
    id_key="id",
    reasoning=ReasoningSpec("Here are my reasoning steps:", "[BEGIN FINAL RESPONSE]"),
    strip_markers=("[END FINAL RESPONSE]",),
)

DIALECT = register(
    SpecDialect(SPEC, Markers(all_of=("<tool_calls>[",), none_of=("<|startoftext|>",)), "Apriel: <tool_calls>[{name, arguments, id}]</tool_calls>")
)
DIALECT.priority = 110  # detection order: higher is tried first (see registry)
