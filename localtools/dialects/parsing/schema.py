"""What the offered tools say, for parsers and grammars alike: which names may
be called, which parameters are strings, and raw argument text typed by that.

Kept apart from the parser state machines so the grammar builder can ask
`param_is_string` without importing a parser.
"""

from __future__ import annotations

import json
from typing import Any

from localtools.dialects.pycall import python_literal


def tool_table(tools: list[dict[str, Any]] | None) -> dict[str, dict[str, Any]]:
    """Offered tool names -> their parameters schema."""
    table: dict[str, dict[str, Any]] = {}
    for tool in tools or []:
        fn = tool.get("function", tool) if isinstance(tool, dict) else {}
        name = fn.get("name") if isinstance(fn, dict) else None
        if isinstance(name, str):
            params = fn.get("parameters")
            table[name] = params if isinstance(params, dict) else {}
    return table


def param_is_string(schema: dict[str, Any], key: str) -> bool | None:
    """True/False when the tool schema types the parameter, None when unknown."""
    props = schema.get("properties") if isinstance(schema, dict) else None
    if not isinstance(props, dict) or key not in props or not isinstance(props[key], dict):
        return None
    typ = props[key].get("type")
    if typ == "string":
        return True
    if isinstance(typ, list):
        return typ == ["string"] or (set(typ) <= {"string", "null"} and "string" in typ)
    if typ is None and "enum" in props[key]:
        return all(isinstance(v, str) for v in props[key]["enum"])
    return False if typ is not None else None


def code_param(schema: dict[str, Any]) -> str:
    """The parameter that raw code for a python tool goes into: its first, else "code"."""
    props = schema.get("properties") if isinstance(schema, dict) else None
    return next(iter(props), "code") if isinstance(props, dict) and props else "code"


def schema_typed_args(args: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    """String values of parameters the schema types otherwise, as those types.

    A template that quotes every value (vLLM's FunctionGemma and Llama 4
    pythonic examples) teaches a model to write `n:<escape>12<escape>` or
    `seats="12"`; the client asked for an integer."""
    out = dict(args)
    for key, value in args.items():
        if isinstance(value, str) and param_is_string(schema, key) is False:
            typed = json.loads(typed_value(value, False))
            if not isinstance(typed, str):
                out[key] = typed
    return out


def typed_value(raw: str, is_string: bool | None) -> str:
    """An argument's raw text as a JSON value, typed by the schema."""
    text = raw.strip()
    if is_string is not True:
        try:
            return json.dumps(json.loads(text), ensure_ascii=False)
        except ValueError:
            pass
        if text[:1] in ("{", "[") and text[-1:] in ("}", "]"):
            try:  # a dict/list the template printed as Python repr (Seed-OSS, MiniCPM5)
                return json.dumps(python_literal(text), ensure_ascii=False)
            except ValueError:
                pass
        low = text.lower()
        if low in ("true", "false"):
            return low
        if low in ("none", "null"):
            return "null"
    return json.dumps(raw, ensure_ascii=False)
