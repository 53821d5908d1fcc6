"""Python call syntax in model output: ``f(a=1, b="x")`` and ``[f(), g(x=2)]``.

Llama 3.x built-in tools (``brave_search.call(query="…")``) and the pythonic
dialects (Llama 3.2 small models, LFM2, ToolACE) write calls this way. Only
literal values are accepted (`ast.literal_eval`); nothing is executed.
"""

from __future__ import annotations

import ast
import json
import re
from typing import Any

_JSON_NAMES = {"true": True, "false": False, "null": None}


class _JsonNames(ast.NodeTransformer):
    """Models trained on JSON sometimes write true/false/null in a Python call."""

    def visit_Name(self, node: ast.Name) -> ast.AST:
        if node.id in _JSON_NAMES:
            return ast.copy_location(ast.Constant(_JSON_NAMES[node.id]), node)
        return node


def _literal(node: ast.AST) -> Any:
    value = ast.literal_eval(_JsonNames().visit(node))
    json.dumps(value)  # must be JSON-representable
    return value


def python_literal(text: str) -> Any:
    """A Python literal (``{'a': 1, 'b': True}``) as JSON data; ValueError if it is not one.

    Templates that print a dict or list argument with ``{{ value }}`` teach the
    model Python's repr, so a tagged value may arrive in that form."""
    try:
        return _literal(ast.parse(text.strip(), mode="eval").body)
    except (SyntaxError, TypeError, RecursionError, MemoryError) as exc:
        raise ValueError(str(exc)) from None


def _call(node: ast.AST) -> tuple[str, dict[str, Any]] | None:
    if not isinstance(node, ast.Call) or node.args:
        return None
    func = node.func
    if isinstance(func, ast.Attribute) and func.attr == "call" and isinstance(func.value, ast.Name):
        name = func.value.id  # brave_search.call(...)
    elif isinstance(func, ast.Name):
        name = func.id
    elif isinstance(func, ast.Attribute):
        parts = []
        cur: ast.AST = func
        while isinstance(cur, ast.Attribute):
            parts.append(cur.attr)
            cur = cur.value
        if not isinstance(cur, ast.Name):
            return None
        parts.append(cur.id)
        name = ".".join(reversed(parts))
    else:
        return None
    args: dict[str, Any] = {}
    for kw in node.keywords:
        if kw.arg is None:
            return None
        try:
            args[kw.arg] = _literal(kw.value)
        except (ValueError, TypeError, SyntaxError):
            return None
    return name, args


def parse_python_calls(text: str) -> list[tuple[str, dict[str, Any]]] | None:
    """`[f(a=1), g()]`, `f(a=1)` or one call a line (Olmo 3) -> [(name, args)],
    or None if not that."""
    try:
        tree = ast.parse(text.strip(), mode="eval")
        body = tree.body
        nodes = body.elts if isinstance(body, (ast.List, ast.Tuple)) else [body]
    except SyntaxError:
        try:
            module = ast.parse(text.strip(), mode="exec")
        except SyntaxError:
            return None
        if not all(isinstance(stmt, ast.Expr) for stmt in module.body):
            return None
        nodes = [stmt.value for stmt in module.body]  # type: ignore[attr-defined]
    calls = []
    for node in nodes:
        call = _call(node)
        if call is None:
            return None
        calls.append(call)
    return calls or None


def parse_loose_python_calls(
    text: str, tools: dict[str, dict[str, Any]]
) -> list[tuple[str, dict[str, Any]]] | None:
    """Calls a template wrote as almost-Python (`f(city=São Paulo, days=2)`, values
    unquoted or commas missing, as some vLLM example templates do), read by the
    offered tool and parameter names; None when the text is not such calls."""
    body = text.strip()
    if body.startswith("[") and body.endswith("]"):
        body = body[1:-1].strip()
    names = "|".join(re.escape(n) for n in sorted(tools, key=len, reverse=True))
    if not names:
        return None
    starts = list(re.finditer(rf"(?:^|(?<=[\s,]))({names})\(", body))
    if not starts or starts[0].start() != 0:
        return None
    calls = []
    for i, m in enumerate(starts):
        end = starts[i + 1].start() if i + 1 < len(starts) else len(body)
        chunk = body[m.end() : end].rstrip().rstrip(",").rstrip()
        if not chunk.endswith(")"):
            return None
        args = _loose_args(chunk[:-1], _param_names(tools[m.group(1)]))
        if args is None:
            return None
        calls.append((m.group(1), args))
    return calls


def _param_names(schema: dict[str, Any]) -> list[str]:
    props = schema.get("properties") if isinstance(schema, dict) else None
    return list(props) if isinstance(props, dict) else []


def _loose_args(text: str, params: list[str]) -> dict[str, Any] | None:
    """`k=v, k2=v2` with known keys; each value a literal where it is one, else raw text."""
    text = text.strip()
    if not text:
        return {}
    if not params:
        return None
    key_re = re.compile("(" + "|".join(re.escape(p) for p in sorted(params, key=len, reverse=True)) + r")\s*=")
    m = key_re.match(text)
    if m is None:
        return None
    args: dict[str, Any] = {}
    while m is not None:
        key, start = m.group(1), m.end()
        search_from = _skip_string(text, start)
        nxt = key_re.search(text, search_from)
        while nxt is not None and nxt.group(1) in args:
            nxt = key_re.search(text, nxt.end())
        raw = text[start : nxt.start() if nxt else len(text)].strip()
        raw = raw[:-1].rstrip() if raw.endswith(",") and nxt else raw
        try:
            args[key] = python_literal(raw)
        except ValueError:
            args[key] = raw
        m = nxt
    return args


def _skip_string(text: str, start: int) -> int:
    """Past a quoted string value beginning at `start` (so a key inside it is not one)."""
    p = start
    while p < len(text) and text[p] in " \t":
        p += 1
    if p >= len(text) or text[p] not in "'\"":
        return start
    quote, p = text[p], p + 1
    while p < len(text) and text[p] != quote:
        p += 2 if text[p] == "\\" else 1
    return p + 1


def balanced_end(text: str, start: int, open_ch: str, close_ch: str) -> int:
    """Index just past the bracket closing the one at `start`, or -1 if not yet."""
    depth = 0
    quote = ""
    i = start
    n = len(text)
    while i < n:
        ch = text[i]
        if quote:
            if ch == "\\":
                i += 2
                continue
            if ch == quote:
                quote = ""
        elif ch in "\"'":
            quote = ch
        elif ch == open_ch:
            depth += 1
        elif ch == close_ch:
            depth -= 1
            if depth == 0:
                return i + 1
        i += 1
    return -1


def _py_literal(value: Any) -> str:
    """A JSON value as Python literal text (True/False/None, repr strings)."""
    if value is None or isinstance(value, bool):
        return repr(value)
    if isinstance(value, (int, float)):
        return json.dumps(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, list):
        return "[" + ", ".join(_py_literal(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{json.dumps(str(k), ensure_ascii=False)}: {_py_literal(v)}" for k, v in value.items()) + "}"
    return json.dumps(value, ensure_ascii=False)


def format_python_call(name: str, args: dict[str, Any]) -> str:
    """`name(k=v, …)` with Python literals: the inverse of parse_python_calls."""
    return f"{name}(" + ", ".join(f"{k}={_py_literal(v)}" for k, v in args.items()) + ")"
