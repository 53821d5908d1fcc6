"""A dialect described by a transformers-style `response_schema` (x-regex).

Hugging Face's response-parsing convention describes a model's output as a
JSON Schema whose nodes carry extraction rules: `x-regex` (search, the named
or single group is the value), `x-regex-iterator` (every match, for arrays),
`x-regex-key-value` (matches with `key`/`value` groups, for objects) and
`x-parser: "json"`. Given in models.toml, it serves a model no dialect module
knows. Regexes cannot be applied incrementally, so this parser holds the
output and emits it when generation ends; calls are not grammar-constrained.
"""

from __future__ import annotations

import json
import re
from typing import Any

from localtools.dialects.base import (
    ArgsDelta,
    CallEnd,
    CallStart,
    ContentDelta,
    Dialect,
    Event,
    ReasoningDelta,
    StreamParser,
)
from localtools.dialects.parsing.schema import tool_table

_MAX_CHARS = 2_000_000


class ResponseSchemaError(ValueError):
    pass


def _match_value(match: re.Match[str]) -> Any:
    named = {k: v for k, v in match.groupdict().items() if v is not None}
    if named:
        return named
    groups = [g for g in match.groups() if g is not None]
    if len(groups) > 1:
        raise ResponseSchemaError(f"regex {match.re.pattern!r} has several unnamed groups; name them")
    return groups[0] if groups else match.group(0)


def extract(node: dict[str, Any], content: Any) -> Any:
    """Apply one schema node's extraction rules to `content` (recursively)."""
    if not isinstance(node, dict):
        raise ResponseSchemaError("every schema node must be an object")
    if "const" in node:
        return node["const"]
    if isinstance(content, str):
        if "x-regex" in node:
            found = re.search(node["x-regex"], content, flags=re.DOTALL)
            if found is None:
                return None
            content = _match_value(found)
        elif "x-regex-iterator" in node:
            content = [_match_value(m) for m in re.finditer(node["x-regex-iterator"], content, flags=re.DOTALL)]
            if not content:
                return None
        elif "x-regex-key-value" in node:
            pairs = re.finditer(node["x-regex-key-value"], content, flags=re.DOTALL)
            content = {m.group("key"): m.group("value") for m in pairs}
    if isinstance(content, str) and node.get("x-parser") == "json":
        try:
            content = json.loads(content)
        except ValueError:
            return None
    kind = node.get("type")
    if kind == "object":
        props = node.get("properties") or {}
        if isinstance(content, str):
            return {k: v for k, v in ((k, extract(child, content)) for k, child in props.items()) if v is not None}
        if isinstance(content, dict):
            out = dict(content) if node.get("additionalProperties", True) and not props else {}
            for key, child in props.items():
                if key in content:
                    value = extract(child, content[key])
                    if value is not None:
                        out[key] = value
                elif "const" in child:
                    out[key] = child["const"]
            return out
        return None
    if kind == "array":
        if not isinstance(content, list):
            return None
        items = node.get("items") or {}
        return [v for v in (extract(items, item) for item in content) if v is not None]
    if isinstance(content, str):
        text = content
        try:
            if kind == "integer":
                return int(text.strip())
            if kind == "number":
                return float(text.strip())
        except ValueError:
            return None
        if kind == "boolean":
            return text.strip().lower() in ("true", "1")
        return text
    return content


def validate_schema(schema: Any) -> dict[str, Any]:
    """Check a response_schema's shape and regexes once, with clear errors."""
    if not isinstance(schema, dict) or schema.get("type") != "object":
        raise ResponseSchemaError("response_schema must be a JSON Schema object with type 'object'")

    def walk(node: Any, where: str) -> None:
        if not isinstance(node, dict):
            raise ResponseSchemaError(f"{where}: a schema node must be an object")
        for key in ("x-regex", "x-regex-iterator", "x-regex-key-value"):
            if key in node:
                try:
                    re.compile(node[key])
                except (re.error, TypeError) as exc:
                    raise ResponseSchemaError(f"{where}.{key}: invalid regex: {exc}") from None
        for name, child in (node.get("properties") or {}).items():
            walk(child, f"{where}.{name}")
        if "items" in node:
            walk(node["items"], f"{where}[]")

    walk(schema, "response_schema")
    return schema


class _HeldParser:
    def __init__(self, schema: dict[str, Any], tools: list[dict[str, Any]] | None) -> None:
        self.schema = schema
        self.tools = tool_table(tools)
        self.parts: list[str] = []
        self.size = 0

    def feed(self, text: str) -> list[Event]:
        if self.size < _MAX_CHARS:
            self.parts.append(text)
            self.size += len(text)
        return []

    def finish(self) -> list[Event]:
        text = "".join(self.parts)
        try:
            message = extract(self.schema, text) or {}
        except (ResponseSchemaError, re.error, TypeError, ValueError):
            return [ContentDelta(text)] if text else []
        head: list[Event] = []
        reasoning = message.get("reasoning_content") or message.get("thinking")
        if isinstance(reasoning, str) and reasoning.strip():
            head.append(ReasoningDelta(reasoning.strip()))
        calls: list[Event] = []
        for call in (message.get("tool_calls") or []) if self.tools else []:
            fn = call.get("function", call) if isinstance(call, dict) else {}
            name = fn.get("name") if isinstance(fn, dict) else None
            args = fn.get("arguments", {}) if isinstance(fn, dict) else None
            if isinstance(args, str):
                try:
                    args = json.loads(args)
                except ValueError:
                    args = None
            if name not in self.tools or not isinstance(args, dict):
                continue
            index = len(calls) // 3
            call_id = call.get("id") if isinstance(call.get("id"), str) else None
            calls += [CallStart(index, name, call_id), ArgsDelta(index, json.dumps(args, ensure_ascii=False)), CallEnd(index)]
        content = message.get("content")
        if isinstance(content, str) and content.strip():
            head.append(ContentDelta(content.strip()))
        elif not calls and not head and text:
            head.append(ContentDelta(text))  # nothing extracted: the text is content, never lost
        return head + calls


class ResponseSchemaDialect(Dialect):
    """Parsing from a transformers-style response_schema (no grammar, no streaming)."""

    def __init__(self, schema: dict[str, Any], name: str = "response-schema") -> None:
        self.schema = validate_schema(schema)
        self.name = name
        self.summary = "output described by a response_schema (x-regex)"

    def parser(self, tools: list[dict[str, Any]] | None, prompt_tail: str = "", stream: bool = True) -> StreamParser:
        return _HeldParser(self.schema, tools)

    def format_calls(self, calls: list[dict[str, Any]]) -> str:
        return "\n".join(
            json.dumps({"name": (c.get("function") or c).get("name"), "arguments": (c.get("function") or c).get("arguments")},
                       ensure_ascii=False)
            for c in calls
        )

    def tool_system_prompt(self, tools: list[dict[str, Any]]) -> str | None:
        listing = "\n".join(json.dumps(t.get("function", t), ensure_ascii=False) for t in tools)
        return f"You can call these functions:\n{listing}"
