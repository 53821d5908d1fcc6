"""Parser events → OpenAI response JSON and streaming chunks.

Pure functions and small accumulators, no HTTP: the SSE endpoint, the JSON
endpoint and in-process callers shape responses the same way.
"""

from __future__ import annotations

import secrets
import string
import time
from typing import Any

from localtools.dialects import ArgsDelta, CallStart, ContentDelta, Event, ReasoningDelta

_ALNUM = string.ascii_letters + string.digits


def random_id(prefix: str, length: int = 24) -> str:
    return prefix + "".join(secrets.choice(_ALNUM) for _ in range(length))


def openai_call_id() -> str:
    """`call_` + 24 alphanumerics, as OpenAI writes tool-call ids."""
    return random_id("call_")


def usage_dict(stats: Any) -> dict[str, Any]:
    prompt = int(stats.prompt_tokens)
    completion = int(stats.completion_tokens)
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
        "prompt_tokens_details": {"cached_tokens": int(stats.cached_tokens)},
    }


def openai_finish_reason(reason: str) -> str:
    """'cancelled' only happens when nobody listens; report it as 'stop'."""
    return reason if reason in ("stop", "length", "tool_calls") else "stop"


class MessageAccumulator:
    """Folds events into one `choices[0].message` (non-streaming responses)."""

    def __init__(self) -> None:
        self.content: list[str] = []
        self.reasoning: list[str] = []
        self.calls: list[dict[str, Any]] = []
        self._by_index: dict[int, dict[str, Any]] = {}

    def add(self, ev: Event) -> None:
        if isinstance(ev, ContentDelta):
            self.content.append(ev.text)
        elif isinstance(ev, ReasoningDelta):
            self.reasoning.append(ev.text)
        elif isinstance(ev, CallStart):
            call = {
                "id": ev.id or openai_call_id(),
                "type": "function",
                "function": {"name": ev.name, "arguments": ""},
            }
            self._by_index[ev.index] = call
            self.calls.append(call)
        elif isinstance(ev, ArgsDelta):
            call = self._by_index.get(ev.index)
            if call is not None:
                call["function"]["arguments"] += ev.text

    def message(self) -> dict[str, Any]:
        content = "".join(self.content)
        if self.calls:
            content = content.strip()
        msg: dict[str, Any] = {"role": "assistant", "content": content if (content or not self.calls) else None}
        reasoning = "".join(self.reasoning).strip()
        if reasoning:
            msg["reasoning_content"] = reasoning
        if self.calls:
            msg["tool_calls"] = self.calls
        return msg


def chat_completion(rid: str, model: str, created: int, message: dict[str, Any], finish: str, stats: Any) -> dict[str, Any]:
    return {
        "id": rid,
        "object": "chat.completion",
        "created": created,
        "model": model,
        "choices": [{"index": 0, "message": message, "logprobs": None, "finish_reason": finish}],
        "usage": usage_dict(stats),
        "system_fingerprint": None,
    }


class ChunkWriter:
    """Makes `chat.completion.chunk` dicts for one streamed response."""

    def __init__(self, model: str, include_usage: bool = False) -> None:
        self.id = random_id("chatcmpl-")
        self.model = model
        self.created = int(time.time())
        self.include_usage = include_usage
        self._call_ids: dict[int, str] = {}

    def _chunk(self, delta: dict[str, Any] | None, finish: str | None = None) -> dict[str, Any]:
        chunk: dict[str, Any] = {
            "id": self.id,
            "object": "chat.completion.chunk",
            "created": self.created,
            "model": self.model,
            "system_fingerprint": None,
            "choices": [] if delta is None else [
                {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}
            ],
        }
        if self.include_usage:
            chunk["usage"] = None
        return chunk

    def first(self) -> dict[str, Any]:
        return self._chunk({"role": "assistant", "content": ""})

    def event(self, ev: Event) -> dict[str, Any] | None:
        """The chunk for one event, or None (CallEnd carries nothing on the wire)."""
        if isinstance(ev, ContentDelta):
            return self._chunk({"content": ev.text}) if ev.text else None
        if isinstance(ev, ReasoningDelta):
            return self._chunk({"reasoning_content": ev.text}) if ev.text else None
        if isinstance(ev, CallStart):
            call_id = ev.id or openai_call_id()
            self._call_ids[ev.index] = call_id
            return self._chunk({"tool_calls": [{
                "index": ev.index, "id": call_id, "type": "function",
                "function": {"name": ev.name, "arguments": ""},
            }]})
        if isinstance(ev, ArgsDelta):
            if not ev.text:
                return None
            return self._chunk({"tool_calls": [{"index": ev.index, "function": {"arguments": ev.text}}]})
        return None

    def finish(self, reason: str) -> dict[str, Any]:
        return self._chunk({}, openai_finish_reason(reason))

    def usage(self, stats: Any) -> dict[str, Any]:
        chunk = self._chunk(None)
        chunk["usage"] = usage_dict(stats)
        return chunk


def text_completion(rid: str, model: str, created: int, text: str, finish: str, stats: Any) -> dict[str, Any]:
    return {
        "id": rid,
        "object": "text_completion",
        "created": created,
        "model": model,
        "choices": [{"index": 0, "text": text, "logprobs": None, "finish_reason": finish}],
        "usage": usage_dict(stats),
        "system_fingerprint": None,
    }


def text_completion_chunk(rid: str, model: str, created: int, text: str, finish: str | None) -> dict[str, Any]:
    return {
        "id": rid,
        "object": "text_completion",
        "created": created,
        "model": model,
        "choices": [{"index": 0, "text": text, "logprobs": None, "finish_reason": finish}],
        "system_fingerprint": None,
    }


def model_card(name: str, created: int, extra: dict[str, Any] | None = None) -> dict[str, Any]:
    card = {"id": name, "object": "model", "created": created, "owned_by": "localtools"}
    if extra:
        card.update(extra)
    return card
