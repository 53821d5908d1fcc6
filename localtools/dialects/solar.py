"""Solar Open: the call id comes first,
``<|tool_calls|><|tool_call:begin|>ID<|tool_call:name|>NAME<|tool_call:args|>{…}<|tool_call:end|>…<|calls|>``."""

from __future__ import annotations

import json
from typing import Any

from localtools.dialects.formatted import FormattedSpecDialect
from localtools.dialects.registry import register
from localtools.dialects.spec import DialectSpec
from localtools.dialects.specdialect import Markers, call_arguments, call_name

SPEC = DialectSpec(
    name="solar",
    shape="tag_json",
    section_start="<|tool_calls|>",
    section_end="<|calls|>",
    call_start="<|tool_call:begin|>",
    id_first=True,
    name_prefix="<|tool_call:name|>",
    args_start="<|tool_call:args|>",
    call_end="<|tool_call:end|>",
)


class SolarDialect(FormattedSpecDialect):
    def render_call(self, call: dict[str, Any], index: int) -> str:
        call_id = call.get("id") or f"call_{index}"
        args = json.dumps(call_arguments(call), ensure_ascii=False)
        return (
            f"<|tool_call:begin|>{call_id}<|tool_call:name|>{call_name(call)}"
            f"<|tool_call:args|>{args}<|tool_call:end|>"
        )


DIALECT = register(SolarDialect(SPEC, Markers(all_of=("<|tool_call:begin|>", "<|tool_call:name|>")), "Solar Open: <|tool_call:begin|>ID<|tool_call:name|>NAME<|tool_call:args|>{…}"))
DIALECT.priority = 360  # detection order: higher is tried first (see registry)
