"""GBNF grammars for tool calls, written in the dialect's own syntax.

The model stays in the format it was trained on: the grammar spells the
dialect's markers literally, the tool name as a literal, and each tool's
arguments through the JSON-Schema converter in localtools.gbnf.
`required`/named choices constrain the whole output; `auto` gets a lazy
grammar armed by the dialect's trigger text, so a started call always
completes validly.
"""

from __future__ import annotations

import json
import re
from typing import Any

from localtools.dialects.parsing.schema import param_is_string
from localtools.dialects.spec import DialectSpec
from localtools.gbnf import (
    Grammar,
    gbnf_charclass_escape,
    gbnf_literal,
    gbnf_optional_literal,
    gbnf_sequence,
    json_schema_to_gbnf,
    relaxations,
)

_THINK_MAX_CHARS = 1200  # bound on a reasoning block allowed before a required call


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
) -> Grammar | None:
    """Grammar for this request, or None when nothing needs constraining."""
    if tool_choice == "none" or not tools:
        return None
    chosen = selected_tools(tools, tool_choice)
    if not chosen:
        return None
    if isinstance(tool_choice, dict):
        parallel = False  # a named tool: exactly one call of it, as at OpenAI
    rules: list[str] = []
    schemas: dict[str, dict[str, Any]] = {}
    opened = prompt_opens_call(spec, prompt_tail)
    _add_call_rules(spec, chosen, schemas, rules)
    rules.append(f"calls ::= {_calls_body(spec, parallel)}")
    root_calls = _add_first_call_rules(spec, chosen, parallel, rules) if opened else "calls"

    if tool_choice == "auto":
        if opened:
            return None  # the model chooses text ("all") or a call right at the start
        triggers = _lazy_triggers(spec)
        if not triggers:
            return None
        rules.insert(0, "root ::= calls")
        return Grammar(gbnf=_finish(rules, schemas), lazy=True, triggers=triggers)

    prefix = _reasoning_prefix(spec, prompt_tail)
    rules.insert(0, f"root ::= {gbnf_sequence(prefix, root_calls)}")
    if prefix:
        rules.append(f'think-text ::= [^<]{{0,{_THINK_MAX_CHARS}}}')
    return Grammar(gbnf=_finish(rules, schemas), lazy=False)


def call_list_rules(
    spec: DialectSpec, tools: list[dict[str, Any]], parallel: bool, same_tool: bool = False
) -> tuple[list[str], dict[str, dict[str, Any]]]:
    """Rules for `calls` (one call, or several when `parallel`) over `tools`, in the
    dialect's syntax, and the argument schemas they refer to (for `finish_grammar`).

    With `same_tool`, the calls of one reply all name the tool the first one named
    (one alternative per tool: `call-0 (sep call-0)* | call-1 (sep call-1)* | ...`)."""
    rules: list[str] = []
    schemas: dict[str, dict[str, Any]] = {}
    _add_call_rules(spec, tools, schemas, rules)
    if same_tool and parallel and len(tools) > 1:
        alternatives = [_calls_body(spec, parallel, f"call-{i}") for i in range(len(tools))]
        rules.append(f"calls ::= {' | '.join(f'( {a} )' for a in alternatives)}")
    else:
        rules.append(f"calls ::= {_calls_body(spec, parallel)}")
    return rules, schemas


def finish_grammar(rules: list[str], schemas: dict[str, dict[str, Any]]) -> str:
    """The GBNF text of `rules` plus the converted argument schemas."""
    return _finish(rules, schemas)


def _add_call_rules(
    spec: DialectSpec, chosen: list[dict[str, Any]], schemas: dict[str, dict[str, Any]], rules: list[str]
) -> None:
    """One `call-i` rule per tool and `call` choosing among them; argument schemas
    go to `schemas` for the JSON converter."""
    alternatives: list[str] = []
    for i, tool in enumerate(chosen):
        name = tool["function"]["name"]
        params = _params_schema(tool)
        rule = f"call-{i}"
        if spec.shape == "tagged":
            body = _tagged_body(spec, i, name, params, schemas, rules)
        elif spec.shape == "python":
            body = _python_body(i, name, params, schemas, rules)
        else:
            if _takes_no_arguments(params):
                rules.append(f'args-{i} ::= "{{}}"')  # exactly "{}", as OpenAI writes it, not "{ }"
            else:
                schemas[f"args-{i}"] = params
            body = _call_body(spec, name, f"args-{i}", opened_by_prompt=False)
        rules.append(f"{rule} ::= {body}")
        alternatives.append(rule)
    rules.append(f"call ::= {' | '.join(alternatives)}")


def _calls_body(spec: DialectSpec, parallel: bool, call: str = "call") -> str:
    """One `call`, or (parallel) several in the dialect's list or separator syntax."""
    if (spec.shape == "json" and spec.array) or (spec.shape == "python" and "\n" not in spec.call_sep):
        many = f'"[" {call} ( ", " {call} )* "]"' if parallel else f'"[" {call} "]"'
    else:
        sep = gbnf_optional_literal(spec.call_sep)
        repeat = f"( {sep} {call} )*" if sep else f"( {call} )*"
        many = f"{call} {repeat}" if parallel else call
    return gbnf_sequence(gbnf_optional_literal(spec.section_start), many, gbnf_optional_literal(spec.section_end))


def _add_first_call_rules(spec: DialectSpec, chosen: list[dict[str, Any]], parallel: bool, rules: list[str]) -> str:
    """When the prompt wrote the first opener, the first call starts at its name:
    adds `first` rules and returns the root's calls part."""
    first = []
    for i, tool in enumerate(chosen):
        first.append(f"first-{i}")
        name = tool["function"]["name"]
        rules.append(f"first-{i} ::= {_call_body(spec, name, f'args-{i}', opened_by_prompt=True)}")
    sep = gbnf_optional_literal(spec.call_sep)
    rest = f"( {sep} call )*" if sep else "( call )*"
    rules.append(f"first ::= {' | '.join(first)}")
    return gbnf_sequence("first", rest) if parallel else "first"


def _lazy_triggers(spec: DialectSpec) -> list[str]:
    """What arms an `auto` grammar: the opening bracket of a bare-JSON/Python call,
    else the first word of the dialect's trigger text (none: no lazy grammar)."""
    if spec.bare_json:
        return [r"^\s*(\[)"] if spec.shape == "python" else [r"^\s*(\{)"]
    if spec.trigger.strip():
        return [re.escape(spec.trigger.split()[0])]
    return []


def _reasoning_prefix(spec: DialectSpec, prompt_tail: str) -> str:
    """A bounded reasoning block allowed (or required, if the prompt opened it)."""
    if not spec.reasoning:
        return ""
    start, end = spec.reasoning.start, spec.reasoning.end
    if prompt_tail.rstrip().endswith(start.strip()):
        return gbnf_sequence("think-text", gbnf_optional_literal(end), '"\\n\\n"?')
    return ""


def _call_body(spec: DialectSpec, name: str, args_rule: str, opened_by_prompt: bool) -> str:
    if spec.shape == "json":
        fields = "".join(f"{json.dumps(k)}: {json.dumps(v)}, " for k, v in spec.extra_fields)
        if spec.name_is_key:
            head = "{" + json.dumps(name) + ": "
        else:
            head = "{" + fields + json.dumps(spec.name_key) + ": " + json.dumps(name) + ", " + json.dumps(spec.args_keys[0]) + ": "
        inner = gbnf_sequence(gbnf_optional_literal(head), args_rule, gbnf_optional_literal("}"))
        return gbnf_sequence(gbnf_optional_literal(spec.call_start), inner, gbnf_optional_literal(spec.call_end))
    opener = "" if opened_by_prompt else spec.call_start + spec.name_prefix
    return gbnf_sequence(
        gbnf_optional_literal(opener + name + spec.name_suffix.replace("{name}", name) + spec.args_start),
        args_rule,
        gbnf_optional_literal(spec.args_end + spec.call_end),
    )


def _takes_no_arguments(params: dict[str, Any]) -> bool:
    """No properties and no others allowed beyond them (or none said): the only call is `{}`."""
    return (
        params.get("type", "object") == "object"
        and not params.get("properties")
        and params.get("additionalProperties") in (None, False)
        and not any(k in params for k in ("patternProperties", "anyOf", "oneOf", "allOf", "$ref"))
    )


def _python_body(
    index: int, name: str, params: dict[str, Any], schemas: dict[str, dict[str, Any]], rules: list[str]
) -> str:
    """`name(k=v, …)`: keyword values in JSON syntax, which the parser reads as
    Python literals (true/false/null included)."""
    declared = params.get("properties")
    props: dict[str, Any] = declared if isinstance(declared, dict) else {}
    required = set(params.get("required") or [])
    needed: list[str] = []
    optional: list[str] = []
    for j, (key, sub) in enumerate(props.items()):
        schemas[f"pyval-{index}-{j}"] = sub if isinstance(sub, dict) and sub else {}
        (needed if key in required else optional).append(f"{gbnf_literal(key + '=')} pyval-{index}-{j}")
    if needed:  # the required keywords in order, then any of the others
        inner = ' ", " '.join(needed) + "".join(f' ( ", " {p} )?' for p in optional)
    elif optional:
        rules.append(f"kw-{index} ::= {' | '.join(optional)}")
        inner = f'( kw-{index} ( ", " kw-{index} )* )?'
    else:
        inner = ""
    return gbnf_sequence(gbnf_literal(name + "("), inner, '")"')


def _tagged_body(
    spec: DialectSpec,
    index: int,
    name: str,
    params: dict[str, Any],
    schemas: dict[str, dict[str, Any]],
    rules: list[str],
) -> str:
    declared = params.get("properties")
    props: dict[str, Any] = declared if isinstance(declared, dict) else {}
    required = set(params.get("required") or [])
    parts = []
    for j, (key, sub) in enumerate(props.items()):
        sub = sub if isinstance(sub, dict) else {}
        value_rule = f"val-{index}-{j}"
        raw = _raw_string_rule(spec, sub) if param_is_string(params, key) else None
        if raw is not None:
            rules.append(f"{value_rule} ::= {raw}")
        else:
            schemas[value_rule] = sub or {}
        piece = gbnf_sequence(
            gbnf_optional_literal(spec.arg_name_prefix + key + spec.arg_name_suffix + spec.arg_value_prefix),
            value_rule,
            gbnf_optional_literal(spec.arg_value_suffix.replace("{key}", key)),
        )
        parts.append(f"( {piece} )" if key in required else f"( {piece} )?")
    if not any(r.startswith("tagged-text ::=") for r in rules):
        rules.append(f"tagged-text ::= {_tagged_char(spec)}*")
    head = spec.call_start + spec.name_prefix + name + spec.name_suffix.replace("{name}", name) + spec.args_start
    return gbnf_sequence(gbnf_optional_literal(head), *parts, gbnf_optional_literal(spec.call_end))


def _tagged_char(spec: DialectSpec) -> str:
    stop = spec.arg_value_suffix.strip()[:1] or "\n"
    return f"[^{gbnf_charclass_escape(stop)}]"


def _raw_string_rule(spec: DialectSpec, schema: dict[str, Any]) -> str:
    """A string parameter written raw between tags, as the parser reads it back.

    The parser takes a string-typed value verbatim, so enums and consts are
    their bare text (not JSON-quoted) and length bounds count raw characters.
    """
    if "const" in schema:
        return gbnf_optional_literal(str(schema["const"])) or '""'
    enum = schema.get("enum")
    if isinstance(enum, list) and enum:
        return " | ".join(gbnf_optional_literal(str(v)) or '""' for v in enum)
    low = schema.get("minLength")
    high = schema.get("maxLength")
    low = low if isinstance(low, int) and not isinstance(low, bool) and 0 <= low <= 1000 else 0
    high = high if isinstance(high, int) and not isinstance(high, bool) and low <= high <= 1000 else None
    if low == 0 and high is None:
        return "tagged-text"
    return f"{_tagged_char(spec)}{{{low},{'' if high is None else high}}}"


def _finish(rules: list[str], schemas: dict[str, dict[str, Any]]) -> str:
    text = "\n".join(rules)
    if schemas:
        text += "\n" + json_schema_to_gbnf(schemas)  # relaxes what it cannot enforce, with a warning
    return text + "\n"


# --------------------------------------------------------------------------
# What a grammar cannot enforce (strict tools get a 400 instead of a silent relaxation)
# --------------------------------------------------------------------------


def schema_gaps(schema: dict[str, Any]) -> list[str]:
    """Everything about `schema` the grammar would not enforce ('what at /path' lines,
    from the converter itself, so the check and the grammar cannot disagree). Empty:
    the grammar honours the schema."""
    return relaxations(schema)
