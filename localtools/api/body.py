"""Reading a request body as JSON, with errors a person can act on.

Shared by every route that takes JSON (OpenAI's and the other APIs'): the size
limit (413), UTF-8, JSON syntax and lone surrogates are checked once, here.
"""

from __future__ import annotations

import json
import re
from typing import Any

from starlette.requests import Request

from localtools.adapters.errors import AdapterError, bad_request


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]", re.ASCII)


def _unpaired_surrogate(value: Any, path: str = "") -> str | None:
    """The param path of a string holding a lone UTF-16 surrogate (JSON allows the
    escape, UTF-8 cannot encode it, so the tokenizer would fail), else None."""
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return path or "body"
        return None
    items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
    for key, item in items:
        where = f"{path}[{key}]" if isinstance(key, int) else (f"{path}.{key}" if path else str(key))
        found = _unpaired_surrogate(key, where) if isinstance(key, str) else None
        found = found or _unpaired_surrogate(item, where)
        if found:
            return found
    return None


async def _read_limited(request: Request, limit: int) -> bytes:
    too_large = AdapterError(
        413,
        f"The request body is larger than {limit} bytes; raise the limit with --max-body-mb.",
        code="request_too_large",
    )
    length = request.headers.get("content-length", "")
    if length.isdigit() and int(length) > limit:
        raise too_large
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise too_large
        chunks.append(chunk)
    return b"".join(chunks)


def _parse(text: str) -> Any:
    if not text.strip():
        raise bad_request("The request body is empty: send a JSON object.")
    try:
        return json.loads(text, parse_constant=_reject_constant)
    except json.JSONDecodeError as exc:
        raise bad_request(
            f"The request body is not valid JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})."
        ) from None
    except ValueError as exc:
        raise bad_request(f"The request body is not valid JSON: {exc}.") from None
    except RecursionError:
        raise bad_request("The request body is nested too deeply to parse.") from None


async def read_json(request: Request, limit: int) -> Any:
    """The body as JSON (raises AdapterError: 413, or 400 naming what is wrong)."""
    raw = await _read_limited(request, limit)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise bad_request(f"The request body is not valid UTF-8 (bad byte at offset {exc.start}).") from None
    body = _parse(text)
    if _SURROGATE_ESCAPE.search(text):
        where = _unpaired_surrogate(body)
        if where is not None:
            where = where.encode("utf-8", "backslashreplace").decode("utf-8")  # a key may hold it too
            raise bad_request(
                f"Invalid value for '{where}': the string contains an unpaired UTF-16 surrogate escape "
                "(\\ud800-\\udfff without its pair), which is not valid Unicode text.",
                param=where,
            )
    return body
