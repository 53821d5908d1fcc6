"""Gemma 4: ``<|tool_call>call:NAME{city:<|"|>London<|"|>,days:3}<tool_call|>``.

Arguments use Gemma's own object syntax — bare keys, strings between
``<|"|>`` tokens, JSON numbers/booleans/null — held until the object closes,
then converted to JSON. Reasoning: ``<|channel>thought…<channel|>``.
"""

from __future__ import annotations

from typing import Any

from localtools.dialects.formatted import FormattedSpecDialect
from localtools.dialects.jsonscan import to_quoted_object
from localtools.dialects.registry import register
from localtools.dialects.spec import DialectSpec, ReasoningSpec
from localtools.dialects.specdialect import Markers, call_arguments, call_name

QUOTE = '<|"|>'

SPEC = DialectSpec(
    name="gemma4",
    shape="tag_json",
    call_start="<|tool_call>",
    name_prefix="call:",
    call_end="<tool_call|>",
    args_string_quote=QUOTE,
    reasoning=ReasoningSpec("<|channel>thought", "<channel|>"),
)


class Gemma4Dialect(FormattedSpecDialect):
    def render_call(self, call: dict[str, Any], index: int) -> str:
        return f"<|tool_call>call:{call_name(call)}{to_quoted_object(call_arguments(call), QUOTE)}<tool_call|>"


DIALECT = register(
    Gemma4Dialect(SPEC, Markers(all_of=("<|tool_call>",)), 'Gemma 4: <|tool_call>call:NAME{k:<|"|>v<|"|>}<tool_call|>')
)
DIALECT.priority = 440  # detection order: higher is tried first (see registry)
