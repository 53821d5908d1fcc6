"""Kimi K2 / K2-Thinking:
``<|tool_calls_section_begin|><|tool_call_begin|>functions.NAME:IDX<|tool_call_argument_begin|>{…}<|tool_call_end|>…<|tool_calls_section_end|>``.

The call id is the whole header, ``functions.NAME:IDX`` (IDX counts calls).
"""

from __future__ import annotations

import json
from typing import Any

from localtools.dialects.formatted import FormattedSpecDialect
from localtools.dialects.registry import register
from localtools.dialects.spec import DialectSpec, ReasoningSpec
from localtools.dialects.specdialect import Markers, call_arguments, call_name

SPEC = DialectSpec(
    name="kimi-k2",
    shape="tag_json",
    section_start="<|tool_calls_section_begin|>",
    section_end="<|tool_calls_section_end|>",
    call_start="<|tool_call_begin|>",
    name_prefix="functions.",
    id_prefix=":",
    id_format="functions.{name}:{id}",
    args_start="<|tool_call_argument_begin|>",
    call_end="<|tool_call_end|>",
    reasoning=ReasoningSpec("<think>", "</think>"),
)


class KimiDialect(FormattedSpecDialect):
    def render_call(self, call: dict[str, Any], index: int) -> str:
        args = json.dumps(call_arguments(call), ensure_ascii=False)
        return (
            f"<|tool_call_begin|>functions.{call_name(call)}:{index}"
            f"<|tool_call_argument_begin|>{args}<|tool_call_end|>"
        )

    def new_call_id(self, index: int) -> str | None:
        return None  # the id needs the name; the parser reports the model's own


DIALECT = register(
    KimiDialect(SPEC, Markers(all_of=("<|tool_calls_section_begin|>",)), "Kimi K2: functions.NAME:IDX + JSON in tool-call sections")
)
DIALECT.priority = 400  # detection order: higher is tried first (see registry)
