"""The engine's per-token logprobs (engine.logprobs.TokenLogprob) in OpenAI's two shapes.

Chat: `choices[i].logprobs = {"content": [{token, logprob, bytes, top_logprobs}], "refusal": None}`.
Completions: `choices[i].logprobs = {tokens, token_logprobs, top_logprobs, text_offset}`.

Tokens are handed out as their text is: `LogprobCursor.take(upto)` gives the entries
whose bytes start before `upto` bytes of generated text, so the tokens listed are those
of the text sent (a stop string's tokens, cut from the text, are not listed).
"""

from __future__ import annotations

from typing import Any


def token_string(raw: bytes) -> str:
    """A token's text; a token that is part of a UTF-8 character is written `bytes:\\xNN`
    (OpenAI's convention), its real bytes are in `bytes`."""
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return "bytes:" + "".join(f"\\x{b:02x}" for b in raw)


class LogprobCursor:
    """Which of a generation's logprob entries were already sent."""

    def __init__(self, stats: Any) -> None:
        self._stats = stats
        self._sent = 0
        self.chars = 0  # characters of the listed tokens so far (completions' text_offset)

    def take(self, upto: int) -> list[Any]:
        """The entries not sent yet whose bytes start before byte `upto` of the text."""
        entries = self._stats.logprobs
        end = self._sent
        n = len(entries)  # the engine thread may append meanwhile: read once
        while end < n and entries[end].offset < upto:
            end += 1
        out = entries[self._sent : end]
        self._sent = end
        return out


def chat_logprobs(entries: list[Any]) -> dict[str, Any]:
    """`choices[i].logprobs` of a chat completion (or of one chunk)."""
    return {
        "content": [
            {
                "token": token_string(e.text),
                "logprob": e.logprob,
                "bytes": list(e.text),
                "top_logprobs": [
                    {"token": token_string(raw), "logprob": lp, "bytes": list(raw)} for raw, lp in e.top
                ],
            }
            for e in entries
        ],
        "refusal": None,
    }


def completion_logprobs(entries: list[Any], cursor: LogprobCursor) -> dict[str, Any]:
    """`choices[i].logprobs` of a text completion (or of one chunk); text offsets in characters."""
    tokens = [token_string(e.text) for e in entries]
    offsets = []
    for tok in tokens:
        offsets.append(cursor.chars)
        cursor.chars += len(tok)
    top: list[dict[str, float]] = []
    for e in entries:
        alternatives: dict[str, float] = {}
        for raw, lp in e.top:
            alternatives.setdefault(token_string(raw), lp)
        top.append(alternatives)
    return {
        "tokens": tokens,
        "token_logprobs": [e.logprob for e in entries],
        "top_logprobs": top,
        "text_offset": offsets,
    }
