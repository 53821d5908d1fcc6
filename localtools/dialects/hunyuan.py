"""Hunyuan A13B: ``<tool_calls>[{"name", "arguments"}]</tool_calls>``, reasoning in ``<think>``."""

from __future__ import annotations

from localtools.dialects.registry import register
from localtools.dialects.spec import DialectSpec, ReasoningSpec
from localtools.dialects.specdialect import Markers, SpecDialect

SPEC = DialectSpec(
    name="hunyuan",
    shape="json",
    section_start="<tool_calls>",
    section_end="</tool_calls>",
    array=True,
    reasoning=ReasoningSpec("<think>", "</think>"),
)

DIALECT = register(
    SpecDialect(SPEC, Markers(all_of=("<tool_calls>[", "<|startoftext|>")), "Hunyuan: <tool_calls>[{name, arguments}]</tool_calls>")
)
DIALECT.priority = 120  # detection order: higher is tried first (see registry)
