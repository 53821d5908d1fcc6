"""Functionary's TypeScript-style tool listing (`generate_schema_from_functions`).

MeetKai's own templates call this helper, which exists only in their Python
code; localtools provides it to those templates so they render as trained.
"""

from __future__ import annotations

import json
from typing import Any


def _ts_type(schema: dict[str, Any]) -> str:
    if not isinstance(schema, dict):
        return "any"
    if "enum" in schema:
        return " | ".join(json.dumps(v, ensure_ascii=False) for v in schema["enum"]) or "any"
    kind = schema.get("type")
    if isinstance(kind, list):
        return " | ".join(_ts_type({**schema, "type": k}) for k in kind)
    if kind == "string":
        return "string"
    if kind in ("number", "integer"):
        return "number"
    if kind == "boolean":
        return "boolean"
    if kind == "null":
        return "null"
    if kind == "array":
        return f"{_ts_type(schema.get('items') or {})}[]"
    if kind == "object":
        props = schema.get("properties") or {}
        if not props:
            return "object"
        required = set(schema.get("required") or [])
        inner = ", ".join(f"{k}{'' if k in required else '?'}: {_ts_type(v)}" for k, v in props.items())
        return "{" + inner + "}"
    return "any"


def generate_schema_from_functions(functions: Any, namespace: str = "functions") -> str:
    """The `namespace functions { type f = (_: {...}) => any; }` text functionary models read."""
    lines = ["// Supported function definitions that should be called when necessary.", f"namespace {namespace} {{", ""]
    for item in functions or []:
        fn = item.get("function", item) if isinstance(item, dict) else {}
        if not isinstance(fn, dict) or "name" not in fn:
            continue
        if fn.get("description"):
            lines.append(f"// {fn['description']}")
        params = fn.get("parameters") or {}
        props = params.get("properties") or {}
        required = set(params.get("required") or [])
        if props:
            lines.append(f"type {fn['name']} = (_: {{")
            for key, sub in props.items():
                sub = sub if isinstance(sub, dict) else {}
                if sub.get("description"):
                    lines.append(f"// {sub['description']}")
                default = f" // default: {json.dumps(sub['default'])}" if "default" in sub else ""
                lines.append(f"{key}{'' if key in required else '?'}: {_ts_type(sub)},{default}")
            lines.append("}) => any;")
        else:
            lines.append(f"type {fn['name']} = () => any;")
        lines.append("")
    lines.append(f"}} // namespace {namespace}")
    return "\n".join(lines)
