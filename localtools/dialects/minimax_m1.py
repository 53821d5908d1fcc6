"""MiniMax-M1: one JSON object a line in ``<tool_calls>\\n{"name", "arguments"}\\n</tool_calls>``."""

from __future__ import annotations

from localtools.dialects.registry import register
from localtools.dialects.spec import DialectSpec, ReasoningSpec
from localtools.dialects.specdialect import Markers, SpecDialect

SPEC = DialectSpec(
    name="minimax-m1",
    shape="json",
    section_start="<tool_calls>\n",
    section_end="\n</tool_calls>",
    call_sep="\n",
    reasoning=ReasoningSpec("<think>", "</think>"),
)

DIALECT = register(
    SpecDialect(SPEC, Markers(all_of=("<tool_calls>", "<beginning_of_sentence>")), "MiniMax-M1: JSON lines in <tool_calls>")
)
DIALECT.priority = 100  # detection order: higher is tried first (see registry)
