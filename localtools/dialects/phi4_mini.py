"""Phi-4-mini: ``<|tool_call|>{"name", "arguments"}<|/tool_call|>`` (llama.cpp's
template); vLLM's asks for ``functools[{…}]``, which parses too."""

from __future__ import annotations

from localtools.dialects.registry import register
from localtools.dialects.spec import DialectSpec
from localtools.dialects.specdialect import Markers, SpecDialect

SPEC = DialectSpec(
    name="phi4-mini",
    shape="json",
    call_start="<|tool_call|>",
    call_end="<|/tool_call|>",
    alt_sections=(("functools", ""),),
    json_in_section=True,
)

DIALECT = register(
    SpecDialect(
        SPEC,
        Markers(all_of=("<|assistant|>",), any_of=("<|/tool_call|>", "functools[")),
        "Phi-4-mini: <|tool_call|>{name, arguments}<|/tool_call|>",
    )
)
DIALECT.priority = 260  # detection order: higher is tried first (see registry)
