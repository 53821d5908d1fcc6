"""Command R7B and Cohere2 MoE:
``<|START_ACTION|>[\\n    {"tool_call_id": "0", "tool_name": NAME, "parameters": {…}}\\n]<|END_ACTION|>``.

Reasoning sits in ``<|START_THINKING|>…<|END_THINKING|>``; text to the user
in ``<|START_RESPONSE|>…<|END_RESPONSE|>`` (Cohere2 MoE: ``<|START_TEXT|>``),
wrappers that are dropped from the content.
"""

from __future__ import annotations

import json
from typing import Any

from localtools.dialects.formatted import FormattedSpecDialect
from localtools.dialects.registry import register
from localtools.dialects.spec import DialectSpec, ReasoningSpec
from localtools.dialects.specdialect import Markers, call_arguments, call_name

SPEC = DialectSpec(
    name="command-r7b",
    shape="json",
    section_start="<|START_ACTION|>",
    section_end="<|END_ACTION|>",
    array=True,
    name_key="tool_name",
    args_keys=("parameters",),
    id_key="tool_call_id",
    reasoning=ReasoningSpec("<|START_THINKING|>", "<|END_THINKING|>"),
    strip_markers=("<|START_RESPONSE|>", "<|END_RESPONSE|>", "<|START_TEXT|>", "<|END_TEXT|>"),
)


class CommandR7BDialect(FormattedSpecDialect):
    def render_call(self, call: dict[str, Any], index: int) -> str:
        obj = {"tool_call_id": str(index), "tool_name": call_name(call), "parameters": call_arguments(call)}
        return "    " + json.dumps(obj, ensure_ascii=False)

    def format_calls(self, calls: list[dict[str, Any]]) -> str:
        body = ",\n".join(self.render_call(c, i) for i, c in enumerate(calls))
        return f"<|START_ACTION|>[\n{body}\n]<|END_ACTION|>"


DIALECT = register(
    CommandR7BDialect(SPEC, Markers(all_of=("<|START_ACTION|>",)), "Command R7B: <|START_ACTION|>[{tool_call_id, tool_name, parameters}]")
)
DIALECT.priority = 220  # detection order: higher is tried first (see registry)
