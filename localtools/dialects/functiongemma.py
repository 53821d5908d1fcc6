"""FunctionGemma: ``<start_function_call>call:NAME{K:<escape>V<escape>}<end_function_call>``
(Gemma's bare-key object syntax, strings between ``<escape>`` tokens)."""

from __future__ import annotations

from typing import Any

from localtools.dialects.formatted import FormattedSpecDialect
from localtools.dialects.jsonscan import to_quoted_object
from localtools.dialects.registry import register
from localtools.dialects.spec import DialectSpec
from localtools.dialects.specdialect import Markers, call_arguments, call_name

QUOTE = "<escape>"

SPEC = DialectSpec(
    name="functiongemma",
    shape="tag_json",
    call_start="<start_function_call>",
    name_prefix="call:",
    call_end="<end_function_call>",
    args_string_quote=QUOTE,
)


class FunctionGemmaDialect(FormattedSpecDialect):
    def render_call(self, call: dict[str, Any], index: int) -> str:
        args = to_quoted_object(call_arguments(call), QUOTE)
        return f"<start_function_call>call:{call_name(call)}{args}<end_function_call>"


DIALECT = register(
    FunctionGemmaDialect(SPEC, Markers(all_of=("<start_function_call>",)), "FunctionGemma: <start_function_call>call:NAME{…}")
)
DIALECT.priority = 430  # detection order: higher is tried first (see registry)
