"""A dialect defined by data: a DialectSpec plus the markers that detect it.

Everything a dialect must provide — parser, grammar, the text of calls in
history, a tool prompt for templates that cannot show tools — is derived
from the spec here, so a dialect module is mostly a spec and a few markers.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from localtools.dialects.base import Dialect, Grammar, StreamParser
from localtools.dialects.decide import (
    DEFAULT_TEXT_OPENER,
    OpenerStripper,
    answer_grammar,
    call_opening,
    decision_grammar,
)
from localtools.dialects.parsing import make_parser
from localtools.dialects.spec import DialectSpec


@dataclass(frozen=True)
class Markers:
    """Detection rule: all of `all_of`, at least one of `any_of`, none of `none_of`."""

    all_of: tuple[str, ...] = ()
    any_of: tuple[str, ...] = ()
    none_of: tuple[str, ...] = ()

    def match(self, template: str) -> list[str] | None:
        if any(m in template for m in self.none_of):
            return None
        if not all(m in template for m in self.all_of):
            return None
        hits = [m for m in self.any_of if m in template]
        if self.any_of and not hits:
            return None
        return list(self.all_of) + hits


def call_arguments(call: dict[str, Any]) -> dict[str, Any]:
    """A call's arguments as a mapping, whether given as a dict or a JSON string."""
    fn = call.get("function", call)
    args = fn.get("arguments", {})
    if isinstance(args, str):
        try:
            args = json.loads(args) if args.strip() else {}
        except ValueError:
            return {}
    return args if isinstance(args, dict) else {}


def call_name(call: dict[str, Any]) -> str:
    fn = call.get("function", call)
    return str(fn.get("name", ""))


def render_calls(spec: DialectSpec, calls: list[dict[str, Any]]) -> str:
    """The canonical text of these calls in the dialect (what the model would write)."""
    parts = [render_call(spec, c) for c in calls]
    if spec.shape == "json" and spec.array:
        body = "[" + ", ".join(parts) + "]"
    else:
        body = spec.call_sep.join(parts)
    return f"{spec.section_start}{body}{spec.section_end}"


def render_call(spec: DialectSpec, call: dict[str, Any]) -> str:
    name = call_name(call)
    args = call_arguments(call)
    if spec.shape == "json":
        if spec.name_is_key:
            obj: dict[str, Any] = {name: args}
        else:
            obj = {k: v for k, v in spec.extra_fields}
            obj[spec.name_key] = name
            obj[spec.args_keys[0]] = args
            if spec.id_key and call.get("id"):
                obj[spec.id_key] = call["id"]
        body = json.dumps(obj, ensure_ascii=False)
    elif spec.shape == "tag_json":
        call_id = f"{spec.id_prefix}{call.get('id', '')}" if spec.id_prefix and call.get("id") else ""
        body = (
            f"{spec.name_prefix}{name}{spec.name_suffix.replace('{name}', name)}{call_id}"
            f"{spec.args_start}{json.dumps(args, ensure_ascii=False)}{spec.args_end}"
        )
    else:
        pieces = []
        for key, value in args.items():
            text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
            pieces.append(
                f"{spec.arg_name_prefix}{key}{spec.arg_name_suffix}{spec.arg_value_prefix}{text}"
                + spec.arg_value_suffix.replace("{key}", key)
            )
        body = f"{spec.name_prefix}{name}{spec.name_suffix.replace('{name}', name)}{spec.args_start}{''.join(pieces)}"
    return f"{spec.call_start}{body}{spec.call_end}"


def default_tool_prompt(spec: DialectSpec, tools: list[dict[str, Any]]) -> str:
    """A system prompt teaching the tools and this dialect's call syntax."""
    lines = [
        "You can call functions (tools) to help answer. Available functions, as JSON schemas:",
        "",
    ]
    for tool in tools:
        fn = tool.get("function", tool)
        lines.append(json.dumps({"name": fn.get("name"), "description": fn.get("description", ""),
                                 "parameters": fn.get("parameters", {"type": "object", "properties": {}})},
                                ensure_ascii=False))
    example_name = (tools[0].get("function", tools[0]).get("name") if tools else "function_name") or "function_name"
    example = render_calls(spec, [{"function": {"name": example_name, "arguments": {"argument": "value"}}}])
    lines += [
        "",
        "To call a function, reply with exactly this format and nothing else:",
        example,
        "Use the function's real parameter names. Several calls may follow one another.",
        "If no function is needed, answer the user normally.",
    ]
    return "\n".join(lines)


class SpecDialect(Dialect):
    """A dialect whose behaviour is derived from a DialectSpec."""

    # the spec calls are written in (history rendering, grammar) where it differs from
    # the one the parser reads (Mistral's templates without [ARGS] write the JSON array)
    render_spec: DialectSpec | None = None
    text_opener: str = DEFAULT_TEXT_OPENER  # decide mode: what the text branch starts with (dialects/decide.py)

    def __init__(self, spec: DialectSpec, markers: Markers | None = None, summary: str = "") -> None:
        self.spec = spec
        self.name = spec.name
        self.markers = markers
        self.summary = summary

    def detect(self, template: str) -> list[str] | None:
        return self.markers.match(template) if self.markers else None

    def tool_system_prompt(self, tools: list[dict[str, Any]]) -> str | None:
        return default_tool_prompt(self.spec, tools)

    def format_calls(self, calls: list[dict[str, Any]]) -> str:
        return render_calls(self.render_spec or self.spec, calls)

    def assumed_prompt_tail(self) -> str:
        """How this family's own generation prompt ends, for text parsed without one
        (`parse_tool_calls` on a bare reply): "" where the reply starts afresh."""
        return ""

    def parser(
        self, tools: list[dict[str, Any]] | None, prompt_tail: str = "", stream: bool = True
    ) -> StreamParser:
        return make_parser(self.spec, tools, prompt_tail or self.assumed_prompt_tail(), stream)

    def grammar(
        self,
        tools: list[dict[str, Any]],
        tool_choice: str | dict[str, Any],
        parallel: bool,
        prompt_tail: str = "",
    ) -> Grammar | None:
        from localtools.dialects.grammar import build_grammar

        return build_grammar(self.render_spec or self.spec, tools, tool_choice, parallel, prompt_tail)

    def decision_grammar(
        self, tools: list[dict[str, Any]], parallel: bool, prompt_tail: str = ""
    ) -> Grammar | None:
        from localtools.dialects.grammar import prompt_opens_call

        if not tools or prompt_opens_call(self.spec, prompt_tail):
            return None  # the generation prompt already opened a call: nothing to decide
        if self.spec.reasoning and prompt_tail.rstrip().endswith(self.spec.reasoning.start.strip()):
            return None  # the prompt opened a reasoning block: the model thinks first
        return decision_grammar(self.render_spec or self.spec, tools, parallel, self.text_opener)

    def decision_parser(
        self, tools: list[dict[str, Any]], prompt_tail: str = "", stream: bool = True
    ) -> StreamParser:
        return OpenerStripper(self.parser(tools, prompt_tail, stream), self.text_opener)

    def answer_grammar(self) -> Grammar | None:
        return answer_grammar(self.render_spec or self.spec)

    def call_opening(self) -> str:
        return call_opening(self.render_spec or self.spec)

    def stop_strings(self) -> list[str]:
        return list(self.spec.stops)
