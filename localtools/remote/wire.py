"""What both HTTP engine clients share: server-sent-event lines, the errors an
upstream's reply means, and the result of one streamed request."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx

from localtools.engine import ContextLengthExceeded, GrammarError


class UpstreamFailed(Exception):
    """The upstream could not serve this request (down, overloaded, broken reply);
    another upstream may. Raised before or after the first piece; the backend decides
    whether a retry is still possible."""


@dataclass
class StreamEnd:
    """What an upstream reported at the end of one generation."""

    finish_reason: str = "stop"  # "stop" | "length"
    completion_tokens: int | None = None
    prompt_tokens: int | None = None
    cached_tokens: int | None = None
    prompt_eval_tokens: int | None = None
    prompt_seconds: float | None = None
    decode_seconds: float | None = None
    slot: int | None = None  # llama-server's slot id that served it


def sse_data(response: httpx.Response) -> Iterator[Any]:
    """The JSON payloads of an SSE stream (`data: {...}` lines; `[DONE]` ends it)."""
    for line in response.iter_lines():
        if not line.startswith("data:"):
            if line.startswith("error:"):  # llama-server's framing of a late error
                raise UpstreamFailed(f"upstream error: {line[6:].strip()[:300]}")
            continue
        data = line[5:].strip()
        if data == "[DONE]":
            return
        try:
            yield json.loads(data)
        except json.JSONDecodeError:
            raise UpstreamFailed(f"unreadable event from upstream: {data[:200]!r}") from None


def error_message(text: str) -> str:
    """The message of an engine's JSON error body (llama-server's and vLLM's shapes)."""
    try:
        body = json.loads(text)
    except json.JSONDecodeError:
        return text.strip()[:500]
    err = body.get("error", body) if isinstance(body, dict) else body
    if isinstance(err, dict):
        return str(err.get("message") or err)[:500]
    return str(err)[:500]


def reply_error(status: int, text: str, prompt_tokens: int, n_ctx: int) -> Exception:
    """An error reply as the exception the in-process engine would raise for it:
    the request's fault (context, grammar, bad value) or the upstream's (retry)."""
    message = error_message(text)
    lowered = message.lower()
    if status >= 500 or status in (408, 429):
        return UpstreamFailed(f"HTTP {status}: {message}")
    if "context" in lowered and ("exceed" in lowered or "length" in lowered):
        return ContextLengthExceeded(prompt_tokens, n_ctx)
    if "grammar" in lowered or "structured" in lowered:
        return GrammarError(f"the engine rejected the grammar: {message}")
    if status in (401, 403):
        return UpstreamFailed(f"the upstream refused the API key (HTTP {status}: {message}); "
                              "give it with --engine-api-key or LOCALTOOLS_ENGINE_API_KEY")
    if status == 404:
        return UpstreamFailed(f"HTTP {status}: {message}")
    return ValueError(f"the engine rejected the request (HTTP {status}): {message}")
