"""Kimi K3: nested ``<|open|>…<|sep|>`` / ``<|close|>…<|sep|>`` elements,
``<|open|>tools<|sep|><|open|>call tool="NAME" index="N"<|sep|><|open|>argument key="K" type="string"<|sep|>V<|close|>argument<|sep|>…<|close|>call<|sep|><|close|>tools<|sep|>``.

``type="string"`` marks a raw string; other types are JSON. Reasoning in the
``think`` element, the answer in ``response`` (its wrapper is dropped).
"""

from __future__ import annotations

import json
from typing import Any

from localtools.dialects.formatted import FormattedSpecDialect
from localtools.dialects.registry import register
from localtools.dialects.spec import DialectSpec, ReasoningSpec
from localtools.dialects.specdialect import Markers, call_arguments, call_name

SPEC = DialectSpec(
    name="kimi-k3",
    shape="tagged",
    section_start="<|open|>tools<|sep|>",
    section_end="<|close|>tools<|sep|>",
    name_prefix='<|open|>call tool="',
    name_suffix='"',
    header_skip=24,
    args_start="<|sep|>",
    arg_name_prefix='<|open|>argument key="',
    arg_flag_sep='" type="',
    arg_name_suffix='"<|sep|>',
    arg_value_suffix="<|close|>argument<|sep|>",
    call_end="<|close|>call<|sep|>",
    reasoning=ReasoningSpec("<|open|>think<|sep|>", "<|close|>think<|sep|>"),
    strip_markers=("<|open|>response<|sep|>", "<|close|>response<|sep|>"),
)



def _json_type(value: Any) -> str:
    if isinstance(value, str):
        return "string"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    if value is None:
        return "null"
    return "array" if isinstance(value, list) else "object"


class KimiK3Dialect(FormattedSpecDialect):
    def render_call(self, call: dict[str, Any], index: int) -> str:
        args = "".join(
            f'<|open|>argument key="{k}" type="{_json_type(v)}"<|sep|>'
            f"{v if isinstance(v, str) else json.dumps(v, ensure_ascii=False)}<|close|>argument<|sep|>"
            for k, v in call_arguments(call).items()
        )
        return f'<|open|>call tool="{call_name(call)}" index="{index + 1}"<|sep|>{args}<|close|>call<|sep|>'


DIALECT = register(
    KimiK3Dialect(SPEC, Markers(all_of=("<|open|>", "<|close|>", "<|end_of_msg|>")), 'Kimi K3: <|open|>call tool="NAME"…<|open|>argument key=…')
)
DIALECT.priority = 390  # detection order: higher is tried first (see registry)
