"""An MCP `CallToolResult` as the text of a tool message.

A local model reads text only, so each content block becomes text: text as
is, structured content as JSON, and what it cannot read — images, audio,
binary resources — as a one-line summary (type, size, uri) rather than being
dropped where nobody would notice. A result with `isError` starts `error: `,
the same mark a failing Python tool's result carries.
"""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any

__all__ = ["result_text", "block_text", "ERROR_PREFIX"]

ERROR_PREFIX = "error: "


def _decoded_size(data: str) -> int:
    try:
        return len(base64.b64decode(data, validate=False))
    except (binascii.Error, ValueError):
        return len(data)


def _size(n: int) -> str:
    return f"{n} bytes" if n < 10_000 else f"{n / 1024:.0f} KiB"


def _resource_text(resource: Any) -> str:
    uri = str(getattr(resource, "uri", ""))
    mime = getattr(resource, "mime_type", None) or "unknown type"
    text = getattr(resource, "text", None)
    if isinstance(text, str):
        return f"[resource {uri} ({mime})]\n{text}"
    blob = getattr(resource, "blob", "") or ""
    return f"[binary resource {uri}: {mime}, {_size(_decoded_size(blob))}]"


def _link_text(block: Any) -> str:
    details = [block.mime_type or "unknown type"]
    if getattr(block, "size", None) is not None:
        details.append(_size(int(block.size)))
    name = f" {block.name!r}" if getattr(block, "name", None) else ""
    return f"[resource link{name}: {block.uri} ({', '.join(details)})]"


def block_text(block: Any) -> str:
    """One content block as text (an unknown kind says what it was)."""
    kind = getattr(block, "type", None)
    if kind == "text":
        return str(block.text)
    if kind in ("image", "audio"):
        return f"[{kind}: {block.mime_type}, {_size(_decoded_size(block.data))}; not shown to the model]"
    if kind == "resource_link":
        return _link_text(block)
    if kind == "resource":
        return _resource_text(block.resource)
    return f"[{kind or type(block).__name__} content; not shown to the model]"


def _same_json(text: str, value: Any) -> bool:
    try:
        return bool(json.loads(text) == value)
    except ValueError:
        return False


def _restates(text: str, structured: Any) -> bool:
    """Whether a text block already carries the structured content: servers send both
    (the SDK wraps a plain return value as `{"result": value}`)."""
    if _same_json(text, structured):
        return True
    if isinstance(structured, dict) and list(structured) == ["result"]:
        value = structured["result"]
        return text == value or _same_json(text, value)
    return False


def result_text(result: Any) -> str:
    """`content`, then `structuredContent` as JSON unless a text block already says exactly that."""
    content = list(getattr(result, "content", None) or [])
    structured = getattr(result, "structured_content", None)
    parts = [block_text(b) for b in content]
    if structured is not None:
        duplicate = any(getattr(b, "type", None) == "text" and _restates(b.text, structured) for b in content)
        if not duplicate:
            parts.append(json.dumps(structured, ensure_ascii=False))
    text = "\n".join(parts) if parts else "(the tool returned no content)"
    return ERROR_PREFIX + text if getattr(result, "is_error", False) else text
