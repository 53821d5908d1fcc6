"""Chat-completions replies and their chunk streams, for the API translator tests.

`completion(...)` is a chat.completion as the pipeline returns it; `chunks(...)`
the chunk stream of the same reply, its text and arguments cut into pieces of
`size` characters, as the pipeline streams it (first chunk with the role, calls
opened with id and name, then argument fragments, finish, usage).
"""

from __future__ import annotations

import json
from typing import Any

USAGE = {"prompt_tokens": 11, "completion_tokens": 7, "total_tokens": 18, "prompt_tokens_details": {"cached_tokens": 2}}


def call(call_id: str, name: str, args: dict[str, Any]) -> dict[str, Any]:
    return {"id": call_id, "type": "function", "function": {"name": name, "arguments": json.dumps(args)}}


def message(content: str | None = None, calls: list[dict[str, Any]] | None = None,
            reasoning: str | None = None) -> dict[str, Any]:
    """A reply message as the pipeline's non-streamed reply has it (content stripped beside calls)."""
    text = content
    if calls:
        text = (content or "").strip() or None
    msg: dict[str, Any] = {"role": "assistant", "content": text if (text or not calls) else None}
    if reasoning:
        msg["reasoning_content"] = reasoning
    if calls:
        msg["tool_calls"] = calls
    return msg


def completion(msg: dict[str, Any], finish: str = "stop") -> dict[str, Any]:
    return {"id": "chatcmpl-1", "object": "chat.completion", "created": 1700000000, "model": "smol",
            "choices": [{"index": 0, "message": msg, "logprobs": None, "finish_reason": finish}], "usage": USAGE}


def _pieces(text: str, size: int) -> list[str]:
    return [text[i:i + size] for i in range(0, len(text), size)]


def chunks(content: str = "", calls: list[dict[str, Any]] | None = None, reasoning: str = "",
           finish: str = "stop", size: int = 3) -> list[dict[str, Any]]:
    """The stream of a reply with this raw (unstripped) content, reasoning and calls."""
    def chunk(delta: dict[str, Any] | None, fin: str | None = None) -> dict[str, Any]:
        return {"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1700000000, "model": "smol",
                "choices": [] if delta is None else [{"index": 0, "delta": delta, "finish_reason": fin}]}

    out = [chunk({"role": "assistant", "content": ""})]
    out += [chunk({"reasoning_content": p}) for p in _pieces(reasoning, size)]
    out += [chunk({"content": p}) for p in _pieces(content, size)]
    for i, c in enumerate(calls or []):
        out.append(chunk({"tool_calls": [{"index": i, "id": c["id"], "type": "function",
                                          "function": {"name": c["function"]["name"], "arguments": ""}}]}))
        out += [chunk({"tool_calls": [{"index": i, "function": {"arguments": p}}]})
                for p in _pieces(c["function"]["arguments"], size)]
    out.append(chunk({}, finish))
    last = chunk(None)
    last["usage"] = USAGE
    out.append(last)
    return out
