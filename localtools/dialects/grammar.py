"""GBNF grammars for tool calls, written in the dialect's own syntax.

The model stays in the format it was trained on: the grammar spells the
dialect's markers literally, the tool name as a literal, and each tool's
arguments through llama-cpp-python's JSON-Schema converter (via the engine).
`required`/named choices constrain the whole output; `auto` gets a lazy
grammar armed by the dialect's trigger text, so a started call always
completes validly.
"""

from __future__ import annotations

import json
import re
from typing import Any

from localtools.dialects.base import GrammarPlan
from localtools.dialects.spec import DialectSpec

_THINK_MAX_CHARS = 1200  # bound on a reasoning block allowed before a required call


def gbnf_literal(text: str) -> str:
    """A GBNF string literal for `text`."""
    out = ['"']
    for ch in text:
        if ch == '"':
            out.append('\\"')
        elif ch == "\\":
            out.append("\\\\")
        elif ch == "\n":
            out.append("\\n")
        elif ch == "\r":
            out.append("\\r")
        elif ch == "\t":
            out.append("\\t")
        elif ord(ch) < 0x20:
            out.append(f"\\x{ord(ch):02x}")
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)


def _seq(*parts: str) -> str:
    return " ".join(p for p in parts if p and p != '""')


def _lit(text: str) -> str:
    return gbnf_literal(text) if text else ""


def selected_tools(tools: list[dict[str, Any]], tool_choice: str | dict[str, Any]) -> list[dict[str, Any]]:
    if isinstance(tool_choice, dict):
        wanted = (tool_choice.get("function") or {}).get("name")
        return [t for t in tools if (t.get("function") or {}).get("name") == wanted]
    return list(tools)


def _params_schema(tool: dict[str, Any]) -> dict[str, Any]:
    params = (tool.get("function") or {}).get("parameters")
    if not isinstance(params, dict) or not params:
        return {"type": "object", "properties": {}}
    return params


def prompt_opens_call(spec: DialectSpec, prompt_tail: str) -> bool:
    """True when the generation prompt already wrote the call opener (Functionary)."""
    opener = (spec.call_start + spec.name_prefix).strip()
    return spec.shape != "json" and bool(opener) and not spec.section_start and prompt_tail.rstrip().endswith(opener)


def build_grammar(
    spec: DialectSpec,
    tools: list[dict[str, Any]],
    tool_choice: str | dict[str, Any],
    parallel: bool,
    prompt_tail: str = "",
) -> GrammarPlan | None:
    """Grammar for this request, or None when nothing needs constraining."""
    if tool_choice == "none" or not tools:
        return None
    chosen = selected_tools(tools, tool_choice)
    if not chosen:
        return None
    if isinstance(tool_choice, dict):
        parallel = False  # a named tool: exactly one call of it, as at OpenAI
    from localtools.engine import json_schema_to_gbnf  # the engine owns llama_cpp

    rules: list[str] = []
    schemas: dict[str, dict[str, Any]] = {}
    alternatives: list[str] = []
    opened = prompt_opens_call(spec, prompt_tail)
    for i, tool in enumerate(chosen):
        name = tool["function"]["name"]
        params = _params_schema(tool)
        rule = f"call-{i}"
        if spec.shape == "tagged":
            body = _tagged_body(spec, i, name, params, schemas, rules)
        else:
            schemas[f"args-{i}"] = params
            body = _call_body(spec, name, f"args-{i}", opened_by_prompt=False)
        rules.append(f"{rule} ::= {body}")
        alternatives.append(rule)
    rules.append(f"call ::= {' | '.join(alternatives)}")

    if spec.shape == "json" and spec.array:
        many = '"[" call ( ", " call )* "]"' if parallel else '"[" call "]"'
        calls = _seq(_lit(spec.section_start), many, _lit(spec.section_end))
    else:
        sep = _lit(spec.call_sep)
        repeat = f"( {sep} call )*" if sep else "( call )*"
        many = f"call {repeat}" if parallel else "call"
        calls = _seq(_lit(spec.section_start), many, _lit(spec.section_end))
    rules.append(f"calls ::= {calls}")

    if opened:
        # the prompt wrote the first opener: the first call starts at its name
        first = []
        for i, tool in enumerate(chosen):
            first.append(f"first-{i}")
            name = tool["function"]["name"]
            rules.append(f"first-{i} ::= {_call_body(spec, name, f'args-{i}', opened_by_prompt=True)}")
        sep = _lit(spec.call_sep)
        rest = f"( {sep} call )*" if sep else "( call )*"
        rules.append(f"first ::= {' | '.join(first)}")
        root_calls = _seq("first", rest) if parallel else "first"
    else:
        root_calls = "calls"

    trigger = spec.trigger.strip()
    if tool_choice == "auto":
        if opened:
            return None  # the model chooses text ("all") or a call right at the start
        if spec.bare_json:
            triggers = [r"^\s*(\{)"]
        elif trigger:
            triggers = [re.escape(spec.trigger.split()[0])]
        else:
            return None
        rules.insert(0, "root ::= calls")
        return GrammarPlan(gbnf=_finish(rules, schemas), lazy=True, triggers=triggers)

    prefix = _reasoning_prefix(spec, prompt_tail)
    rules.insert(0, f"root ::= {_seq(prefix, root_calls)}")
    if prefix:
        rules.append(f'think-text ::= [^<]{{0,{_THINK_MAX_CHARS}}}')
    return GrammarPlan(gbnf=_finish(rules, schemas), lazy=False)


def _reasoning_prefix(spec: DialectSpec, prompt_tail: str) -> str:
    """A bounded reasoning block allowed (or required, if the prompt opened it)."""
    if not spec.reasoning:
        return ""
    start, end = spec.reasoning.start, spec.reasoning.end
    if prompt_tail.rstrip().endswith(start.strip()):
        return _seq("think-text", _lit(end), '"\\n\\n"?')
    return ""


def _call_body(spec: DialectSpec, name: str, args_rule: str, opened_by_prompt: bool) -> str:
    if spec.shape == "json":
        fields = "".join(f"{json.dumps(k)}: {json.dumps(v)}, " for k, v in spec.extra_fields)
        if spec.name_is_key:
            head = "{" + json.dumps(name) + ": "
        else:
            head = "{" + fields + json.dumps(spec.name_key) + ": " + json.dumps(name) + ", " + json.dumps(spec.args_keys[0]) + ": "
        inner = _seq(_lit(head), args_rule, _lit("}"))
        return _seq(_lit(spec.call_start), inner, _lit(spec.call_end))
    opener = "" if opened_by_prompt else spec.call_start + spec.name_prefix
    return _seq(
        _lit(opener + name + spec.name_suffix + spec.args_start),
        args_rule,
        _lit(spec.args_end + spec.call_end),
    )


def _tagged_body(
    spec: DialectSpec,
    index: int,
    name: str,
    params: dict[str, Any],
    schemas: dict[str, dict[str, Any]],
    rules: list[str],
) -> str:
    props = params.get("properties") if isinstance(params.get("properties"), dict) else {}
    required = set(params.get("required") or [])
    parts = []
    for j, (key, sub) in enumerate(props.items()):
        sub = sub if isinstance(sub, dict) else {}
        value_rule = f"val-{index}-{j}"
        if sub.get("type") == "string" and not sub.get("enum"):
            rules.append(f"{value_rule} ::= tagged-text")
        else:
            schemas[value_rule] = sub or {}
        piece = _seq(
            _lit(spec.arg_name_prefix + key + spec.arg_name_suffix + spec.arg_value_prefix),
            value_rule,
            _lit(spec.arg_value_suffix),
        )
        parts.append(f"( {piece} )" if key in required else f"( {piece} )?")
    if not any(r.startswith("tagged-text ::=") for r in rules):
        stop = spec.arg_value_suffix.strip()[:1] or "\n"
        rules.append(f"tagged-text ::= [^{_charclass_escape(stop)}]*")
    return _seq(_lit(spec.call_start + spec.name_prefix + name + spec.name_suffix), *parts, _lit(spec.call_end))


def _charclass_escape(ch: str) -> str:
    return {"\\": "\\\\", "]": "\\]", "^": "\\^", "-": "\\-", "\n": "\\n"}.get(ch, ch)


def _finish(rules: list[str], schemas: dict[str, dict[str, Any]]) -> str:
    from localtools.engine import json_schema_to_gbnf

    text = "\n".join(rules)
    if schemas:
        text += "\n" + json_schema_to_gbnf(schemas)
    return text + "\n"
