"""Functionary v2 (small/medium v2.x; also the Llama-3 based v2.5).

Turns are ``<|from|>assistant\\n<|recipient|>NAME\\n<|content|>{args}``; the
recipient ``all`` means text for the user. The prompt ends at the recipient.
"""

from __future__ import annotations

from typing import Any

from localtools.dialects.functionary_schema import generate_schema_from_functions
from localtools.dialects.registry import register
from localtools.dialects.spec import DialectSpec
from localtools.dialects.specdialect import Markers, SpecDialect

SPEC = DialectSpec(
    name="functionary-v2",
    shape="tag_json",
    call_start="<|from|>assistant\n",
    name_prefix="<|recipient|>",
    name_suffix="\n<|content|>",
    call_end="<|stop|>",
    call_sep="\n",
    content_name="all",
    stops=("<|stop|>",),
)

# Every v2 template's generation prompt ends by opening the assistant's recipient,
# so the model's text starts at a name ("get_weather\n<|content|>{…}" or "all\n…").
GENERATION_PROMPT_END = SPEC.call_start + SPEC.name_prefix

# v2.5 (Llama 3 based) writes the recipient after a reserved token instead:
# text, then "<|reserved_special_token_249|>NAME\n{args}" for each call.
LLAMA3_SPEC = DialectSpec(
    name="functionary-v2",
    shape="tag_json",
    name_prefix="<|reserved_special_token_249|>",
    name_suffix="\n",
)


class FunctionaryV2(SpecDialect):
    def for_template(self, template: str) -> SpecDialect:
        if "<|reserved_special_token_249|>" in template and "<|recipient|>" not in template:
            variant = FunctionaryV2(LLAMA3_SPEC, self.markers, self.summary)
            return variant
        return self

    def assumed_prompt_tail(self) -> str:
        """The reply starts at the recipient's name. Text that is a whole turn
        ("<|from|>assistant\n<|recipient|>…") still parses: the name check fails at
        "<" and the parser reads on from there."""
        return GENERATION_PROMPT_END if self.spec.name_prefix == SPEC.name_prefix else ""

    def render_kwargs(self, tools: list[dict[str, Any]]) -> dict[str, Any]:
        return {"generate_schema_from_functions": generate_schema_from_functions}


DIALECT = register(
    FunctionaryV2(
        SPEC,
        Markers(any_of=("<|recipient|>", "<|reserved_special_token_249|>")),
        "Functionary v2: <|recipient|>NAME <|content|>{args} (v2.5: <|reserved_special_token_249|>NAME)",
    )
)
DIALECT.priority = 410  # detection order: higher is tried first (see registry)
