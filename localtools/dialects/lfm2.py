"""LFM2 through llama.cpp's own template: a JSON list in
``<|tool_call_start|>[{"name": NAME, "arguments": {…}, "id": ID}]<|tool_call_end|>``.

LFM2's original templates write Python calls instead (see `pythonic`).
"""

from __future__ import annotations

from localtools.dialects.registry import register
from localtools.dialects.spec import DialectSpec, ReasoningSpec
from localtools.dialects.specdialect import Markers, SpecDialect

SPEC = DialectSpec(
    name="lfm2",
    shape="json",
    section_start="<|tool_call_start|>",
    section_end="<|tool_call_end|>",
    array=True,
    id_key="id",
    reasoning=ReasoningSpec("<think>", "</think>"),
)

DIALECT = register(
    SpecDialect(
        SPEC,
        Markers(all_of=("<|tool_call_start|>", "List of tools: ", '{"name": "')),
        "LFM2 (llama.cpp template): <|tool_call_start|>[{name, arguments, id}]<|tool_call_end|>",
    )
)
DIALECT.priority = 150  # detection order: higher is tried first (see registry)
