"""Dialects for models without tool training: the tool prompt they follow, and `auto` by decision.

A model that never saw tools in training learns them from the system prompt
alone, so at 135M parameters how the prompt shows them decides everything.
What was measured with scripts/eval_tools.py (SmolLM2-135M, own cases) is
kept here: every tool as one compact signature line (names, types, which
arguments are optional) rather than raw JSON schemas, one example call built
from the first tool's own required parameters (typed placeholders, never
values from a request), one sentence for each way to reply: a call, or
the text opener followed by the answer, and the tool list after those
instructions, nearest the user's message (all 180 cases, list last against the
"none fits" sentence last: 59/28/25/70% against 52/24/23/68% for simple,
multiple, parallel, irrelevance). In `auto` these dialects decide at the
first token between the two (dialects/decide.py), so the opener the prompt
names is the one the grammar offers.
"""

from __future__ import annotations

import json
from typing import Any

from localtools.dialects.spec import DialectSpec
from localtools.dialects.specdialect import SpecDialect, render_calls

_PLACEHOLDERS: dict[str, Any] = {"string": "...", "number": 0, "integer": 0, "boolean": True, "array": [], "object": {}}


def _function(tool: dict[str, Any]) -> dict[str, Any]:
    return tool.get("function", tool)


def _dict(value: Any) -> dict[str, Any]:
    """`value` if it is a JSON object, else an empty one (tool schemas come from clients)."""
    return value if isinstance(value, dict) else {}


def _type_text(schema: Any) -> str:
    if not isinstance(schema, dict):
        return "any"
    if isinstance(schema.get("enum"), list):
        return " | ".join(json.dumps(v, ensure_ascii=False) for v in schema["enum"])
    kind = schema.get("type", "any")
    if kind == "array" and isinstance(schema.get("items"), dict):
        return f"array of {_type_text(schema['items'])}"
    return " | ".join(kind) if isinstance(kind, list) else str(kind)


def signature(tool: dict[str, Any]) -> str:
    """`name(arg: type, other: type (optional)) - description`, one line per tool."""
    fn = _function(tool)
    params = _dict(fn.get("parameters"))
    props = _dict(params.get("properties"))
    required = set(params.get("required") or [])
    args = [f"{key}: {_type_text(sub)}" + ("" if key in required else " (optional)") for key, sub in props.items()]
    description = " ".join(str(fn.get("description") or "").split())
    return f"{fn.get('name')}({', '.join(args)})" + (f" - {description}" if description else "")


def example_call(spec: DialectSpec, tool: dict[str, Any]) -> str:
    """A call of `tool` in the dialect's syntax, its required arguments as typed placeholders."""
    fn = _function(tool)
    params = _dict(fn.get("parameters"))
    props = _dict(params.get("properties"))
    keys = [k for k in params.get("required") or [] if k in props] or list(props)[:1]
    args = {}
    for key in keys:
        sub = props[key] if isinstance(props[key], dict) else {}
        enum = sub.get("enum")
        args[key] = enum[0] if isinstance(enum, list) and enum else _PLACEHOLDERS.get(str(sub.get("type")), "...")
    return render_calls(spec, [{"function": {"name": fn.get("name"), "arguments": args}}])


def untrained_tool_prompt(spec: DialectSpec, tools: list[dict[str, Any]], opener: str) -> str:
    """The system prompt teaching an untrained model the call syntax, the text opener and the tools.

    The instructions come first and the tool list last, nearest the user's
    message: with the list first, the model mostly took the example's tool
    (the first listed) or a neighbour (multiple-tool 20%, first 20 cases);
    with the list last, 30%."""
    lines = []
    if tools:
        lines += [
            "You are a helpful assistant. If a function can answer the user's request, call it by replying only with:",
            example_call(spec, tools[0]),
            "with the values taken from the user's message. Write one call for each thing the user asks for.",
        ]
    else:
        lines.append("You are a helpful assistant.")
    if opener:
        lines.append(f'If none of the functions fits the request, reply with "{opener}" followed by your answer.')
    else:
        lines.append("If none of the functions fits the request, answer in plain text.")
    if tools:
        lines += ["", "The functions:"] + [signature(t) for t in tools]
    return "\n".join(lines)


class UntrainedDialect(SpecDialect):
    """A SpecDialect for models without tool training: `auto` decides, the prompt is the measured one."""

    auto_tools_default = "decide"

    def tool_system_prompt(self, tools: list[dict[str, Any]]) -> str | None:
        return untrained_tool_prompt(self.spec, tools, self.text_opener)
