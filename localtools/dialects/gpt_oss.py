"""GPT-OSS (OpenAI harmony format).

Reasoning: ``<|channel|>analysis<|message|>…<|end|>``. A call:
``<|start|>assistant to=functions.NAME<|channel|>commentary json<|message|>{…}<|call|>``
(the recipient may also follow the channel:
``<|channel|>commentary to=functions.NAME <|constrain|>json<|message|>{…}``).
Text to the user: ``<|channel|>final<|message|>…`` or a commentary preamble.
The generation prompt ends in ``<|start|>assistant``.

It fits the tag+JSON shape: the name sits after ``to=functions.``, a short
header (channel, constrain) is skipped up to ``<|message|>``, and the harmony
framing tokens are dropped from the content.
"""

from __future__ import annotations

import json
from typing import Any

from localtools.dialects.formatted import FormattedSpecDialect
from localtools.dialects.registry import register
from localtools.dialects.spec import DialectSpec, ReasoningSpec
from localtools.dialects.specdialect import Markers, call_arguments, call_name

SPEC = DialectSpec(
    name="gpt-oss",
    shape="tag_json",
    name_prefix="to=functions.",
    header_skip=48,
    args_start="<|message|>",
    call_end="<|call|>",
    reasoning=ReasoningSpec("<|channel|>analysis<|message|>", "<|end|>"),
    strip_markers=(
        "<|start|>assistant",
        "<|channel|>final<|message|>",
        "<|channel|>commentary<|message|>",
        "<|channel|>commentary",
        "<|end|>",
        "<|return|>",
    ),
    stops=("<|call|>",),
)


class HarmonyDialect(FormattedSpecDialect):
    def render_call(self, call: dict[str, Any], index: int) -> str:
        args = json.dumps(call_arguments(call), ensure_ascii=False)
        return f"<|start|>assistant to=functions.{call_name(call)}<|channel|>commentary json<|message|>{args}<|call|>"


DIALECT = register(
    HarmonyDialect(SPEC, Markers(all_of=("<|channel|>", "<|message|>")), "GPT-OSS harmony: to=functions.NAME …<|message|>{args}")
)
DIALECT.priority = 450  # detection order: higher is tried first (see registry)
