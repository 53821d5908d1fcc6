"""Pythonic calls: ``[f(a=1), g(b="x")]`` — Llama 3.2/4 pythonic, ToolACE,
Gemma 3 pythonic; LFM2/LFM2.5 wrap the list in
``<|tool_call_start|>…<|tool_call_end|>``, Llama 4 may use
``<|python_start|>…<|python_end|>``, Olmo 3 writes one call a line in
``<function_calls>…</function_calls>``.

A bare list counts only at the very start of the output. Calls are held until
the list closes, then parsed with `ast` (literals only; nothing is executed).
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from localtools.dialects.formatted import FormattedSpecDialect
from localtools.dialects.pycall import format_python_call
from localtools.dialects.registry import register
from localtools.dialects.spec import DialectSpec, ReasoningSpec
from localtools.dialects.specdialect import Markers, call_arguments, call_name

_LFM = ("<|tool_call_start|>", "<|tool_call_end|>")
_LLAMA4 = ("<|python_start|>", "<|python_end|>")
_OLMO = ("<function_calls>", "</function_calls>")

SPEC = DialectSpec(
    name="pythonic",
    shape="python",
    bare_json=True,
    section_start=_LFM[0],
    section_end=_LFM[1],
    alt_sections=(_LLAMA4, _OLMO),
    reasoning=ReasoningSpec("<think>", "</think>"),
)
BARE_SPEC = replace(SPEC, section_start="", section_end="", alt_sections=(_LFM, _LLAMA4, _OLMO))
OLMO_SPEC = replace(
    SPEC, section_start=_OLMO[0] + "\n", section_end="\n" + _OLMO[1], call_sep="\n", alt_sections=(_LFM, _LLAMA4)
)


class PythonicDialect(FormattedSpecDialect):
    def render_call(self, call: dict[str, Any], index: int) -> str:
        return format_python_call(call_name(call), call_arguments(call))

    def format_calls(self, calls: list[dict[str, Any]]) -> str:
        parts = [self.render_call(c, i) for i, c in enumerate(calls)]
        if "\n" in self.spec.call_sep:
            body = "\n".join(parts)  # Olmo 3: one call a line, no brackets
        else:
            body = "[" + ", ".join(parts) + "]"
        return f"{self.spec.section_start}{body}{self.spec.section_end}"

    def for_template(self, template: str) -> PythonicDialect:
        if _LFM[0] in template or "List of tools" in template:
            return self
        spec = OLMO_SPEC if _OLMO[0] in template else BARE_SPEC
        return PythonicDialect(spec, self.markers, self.summary)


DIALECT = register(
    PythonicDialect(
        SPEC,
        Markers(any_of=("[func_name1(", "List of tools: ", _OLMO[0]), none_of=('{"name": "',)),
        "Pythonic: [f(a=1), g()] (bare, <|tool_call_start|>, <|python_start|>, <function_calls>)",
    )
)
DIALECT.priority = 130  # detection order: higher is tried first (see registry)
