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
import logging
import re
from typing import Any

from localtools import gbnf
from localtools.dialects.parsing.schema import param_is_string
from localtools.dialects.spec import DialectSpec
from localtools.gbnf import (
    Grammar,
    gbnf_charclass_escape,
    gbnf_literal,
    gbnf_optional_literal,
    gbnf_sequence,
    json_schema_to_gbnf,
)

log = logging.getLogger("localtools.grammar")

_THINK_MAX_CHARS = 1200  # bound on a reasoning block allowed before a required call
_MAX_INT_ENUM = 256  # integer ranges up to this many values become an enum the converter enforces

# llama-cpp-python's converter lets JSON strings hold raw control characters
# (its `char` rule is [^"\\]), so a model could write a newline inside a
# string and break the JSON; llama.cpp's own converter excludes them.
_LOOSE_CHAR = 'char ::= [^"\\\\] |'
_JSON_CHAR = 'char ::= [^"\\\\\\x7F\\x00-\\x1F] |'


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


def _add_call_rules(
    spec: DialectSpec, chosen: list[dict[str, Any]], schemas: dict[str, dict[str, Any]], rules: list[str]
) -> None:
    """One `call-i` rule per tool and `call` choosing among them; argument schemas
    go to `schemas` for the JSON converter."""
    alternatives: list[str] = []
    for i, tool in enumerate(chosen):
        name = tool["function"]["name"]
        params = _params_schema(tool)
        for gap in unenforced_keywords(params):
            log.warning("tool %r: relaxed in the grammar: %s", name, gap)
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


def _calls_body(spec: DialectSpec, parallel: bool) -> str:
    """One call, or (parallel) several in the dialect's list or separator syntax."""
    if (spec.shape == "json" and spec.array) or (spec.shape == "python" and "\n" not in spec.call_sep):
        many = '"[" call ( ", " call )* "]"' if parallel else '"[" call "]"'
    else:
        sep = gbnf_optional_literal(spec.call_sep)
        repeat = f"( {sep} call )*" if sep else "( call )*"
        many = f"call {repeat}" if parallel else "call"
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
        text += "\n" + json_gbnf(schemas)
    return text + "\n"


def json_gbnf(schemas: dict[str, dict[str, Any]]) -> str:
    """JSON-Schema → GBNF conversion (localtools.gbnf), tightened where the converter is loose.

    Small integer ranges are enforced (the converter ignores minimum/maximum)
    and strings cannot hold raw control characters (invalid JSON).
    """
    text = json_schema_to_gbnf({k: tighten_schema(v) for k, v in schemas.items()})
    return text.replace(_LOOSE_CHAR, _JSON_CHAR)


def integer_range(schema: dict[str, Any]) -> tuple[int | None, int | None]:
    """The inclusive (low, high) bounds of an integer schema (None: unbounded)."""

    def bound(key: str, exclusive: str, step: int) -> int | None:
        values = []
        if isinstance(schema.get(key), (int, float)) and not isinstance(schema.get(key), bool):
            values.append(schema[key])
        ex = schema.get(exclusive)
        if isinstance(ex, (int, float)) and not isinstance(ex, bool):
            values.append(ex + step)
        if not values:
            return None
        v = max(values) if step > 0 else min(values)
        return int(-(-v // 1)) if step > 0 else int(v // 1)  # ceil / floor

    return bound("minimum", "exclusiveMinimum", 1), bound("maximum", "exclusiveMaximum", -1)


def tighten_schema(node: Any) -> Any:
    """A copy where bounded integer ranges of at most _MAX_INT_ENUM values are enums."""
    if isinstance(node, list):
        return [tighten_schema(v) for v in node]
    if not isinstance(node, dict):
        return node
    out = {k: tighten_schema(v) if isinstance(v, (dict, list)) else v for k, v in node.items()}
    if out.get("type") == "integer" and "enum" not in out and "const" not in out:
        low, high = integer_range(out)
        if low is not None and high is not None and 0 <= high - low < _MAX_INT_ENUM:
            out["enum"] = list(range(low, high + 1))
    return out


# --------------------------------------------------------------------------
# What a grammar cannot enforce (strict tools get a 400 instead of a silent relaxation)
# --------------------------------------------------------------------------

# keywords the converter ignores without a word; the grammar then allows more than the schema
_IGNORED = (
    "multipleOf", "not", "if", "then", "else", "uniqueItems", "contains", "minContains", "maxContains",
    "minProperties", "maxProperties", "dependentRequired", "dependentSchemas", "propertyNames",
    "unevaluatedProperties", "unevaluatedItems", "patternProperties",
)
_BOUNDS = ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum")
_FORMATS = {"date", "time", "date-time", "uuid", "uuid1", "uuid2", "uuid3", "uuid4", "uuid5"}


def unenforced_keywords(schema: Any, path: str = "") -> list[str]:
    """Schema keywords the grammar would silently not enforce, as 'path: what' lines."""
    found: list[str] = []
    if isinstance(schema, list):
        for i, sub in enumerate(schema):
            found += unenforced_keywords(sub, f"{path}[{i}]")
        return found
    if not isinstance(schema, dict):
        return found
    here = path or "(root)"
    for key in _IGNORED:
        if key in schema:
            found.append(f"{here}: '{key}' is not supported")
    bounds = [k for k in _BOUNDS if k in schema]
    if bounds and schema.get("type") == "number":
        found.append(f"{here}: {', '.join(bounds)} on a number is not supported")
    elif bounds and schema.get("type") == "integer" and "enum" not in schema:
        low, high = integer_range(schema)
        if low is None or high is None or high - low >= _MAX_INT_ENUM:
            found.append(f"{here}: integer bounds are enforced only for ranges of under {_MAX_INT_ENUM} values")
    fmt = schema.get("format")
    if isinstance(fmt, str) and fmt not in _FORMATS:
        found.append(f"{here}: format {fmt!r} is not supported")
    for key in ("properties", "$defs", "definitions"):
        if isinstance(schema.get(key), dict):
            for name, sub in schema[key].items():
                found += unenforced_keywords(sub, f"{path}.{key}.{name}" if path else f"{key}.{name}")
    for key in ("items", "additionalProperties", "anyOf", "oneOf", "allOf", "prefixItems"):
        if isinstance(schema.get(key), (dict, list)):
            found += unenforced_keywords(schema[key], f"{path}.{key}" if path else key)
    return found


def schema_gaps(schema: dict[str, Any]) -> list[str]:
    """Everything about `schema` a grammar would not enforce: keywords the converter
    ignores, plus what it had to drop to convert at all (a `pattern` it cannot
    read, a `$ref` it cannot resolve). Empty: the grammar honours the schema."""
    import logging

    gaps = unenforced_keywords(schema)
    notes: list[str] = []

    class _Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            notes.append(record.getMessage())

    converter_log = gbnf.log  # the converter warns there
    handler = _Collect(level=logging.WARNING)
    converter_log.addHandler(handler)
    try:
        json_gbnf({"strict-check": schema})
    finally:
        converter_log.removeHandler(handler)
    prefix = "JSON schema for 'strict-check': "
    failures = [n[len(prefix):] for n in notes if n.startswith(prefix) and "(next try:" in n]
    gaps += [n[len(prefix):] for n in notes if n.startswith(prefix) and "too large for a grammar" in n]
    if failures:
        # the converter retries without pattern, then $ref, then format, then gives up
        dropped = [f"'{k}'" for k in ("pattern", "$ref", "format")][: len(failures)]
        if len(failures) > 3:
            outcome = "it would allow any JSON object"
        else:
            outcome = "it converts only without " + " and ".join(dropped)
        reason = failures[0].rsplit(" (next try:", 1)[0].replace("strict-check", "")
        reason = reason.split(" not in {", 1)[0][:160]
        gaps.append(f"the grammar converter rejects it ({reason}); {outcome}")
    return gaps
