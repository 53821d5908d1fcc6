"""llama-server's native `/completion` endpoint as a token source.

The prompt goes as token ids (tokenized here from the GGUF, exactly as the in-process
engine tokenizes it, so BOS is never doubled and counts match); the grammar as GBNF
`grammar`, with `grammar_lazy` and `grammar_triggers` of type 2 (a regex pattern,
llama.cpp's COMMON_GRAMMAR_TRIGGER_TYPE_PATTERN) for lazy ones: llama.cpp applies a
trigger as `Grammar` documents (first non-empty group, `^...$` anchors the whole
text), the same rule the in-process engine follows. `cache_prompt` keeps the slot's
KV cache for the next turn; `id_slot` pins a conversation to the slot that holds it.
Field names are those of the llama.cpp vendored in the pinned llama-cpp-python
(tools/server/server-schema.cpp, server-task.cpp).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx

from localtools.engine import SamplingParams
from localtools.engine.logprobs import TokenLogprob
from localtools.remote.wire import StreamEnd, UpstreamFailed, reply_error, sse_data

TRIGGER_PATTERN = 2  # common_grammar_trigger_type: TOKEN 0, WORD 1, PATTERN 2, PATTERN_FULL 3
FINISH = {"eos": "stop", "word": "stop", "limit": "length", "none": "stop"}
FINAL_FIELDS = ["content", "stop", "stop_type", "id_slot", "tokens_predicted", "tokens_evaluated",
                "tokens_cached", "timings"]


def request_body(tokens: list[int], params: SamplingParams, slot: int, max_tokens: int) -> dict[str, Any]:
    """The /completion body for one generation (`max_tokens` already bounded by n_ctx)."""
    body: dict[str, Any] = {
        "prompt": tokens,
        "stream": True,
        "cache_prompt": True,
        "id_slot": slot,
        "n_predict": max_tokens,
        "temperature": params.temperature,
        "top_p": params.top_p,
        "top_k": params.top_k,
        "min_p": params.min_p,
        "repeat_penalty": params.repeat_penalty,
        "presence_penalty": params.presence_penalty,
        "frequency_penalty": params.frequency_penalty,
        "stop": list(params.stop),
        "response_fields": FINAL_FIELDS,  # not the whole prompt and settings echoed back
    }
    if params.seed is not None:
        body["seed"] = params.seed
    if params.logprobs is not None:  # per token: its logprob and the best alternatives
        body["n_probs"] = max(1, params.logprobs)
    grammar = params.grammar
    if grammar is not None:
        body["grammar"] = grammar.gbnf
        if grammar.lazy:
            body["grammar_lazy"] = True
            body["grammar_triggers"] = [{"type": TRIGGER_PATTERN, "value": t} for t in grammar.triggers]
    return body


def token_logprobs(event: dict[str, Any], offset: int, n_top: int) -> list[TokenLogprob]:
    """An event's `completion_probabilities` as the engine's TokenLogprob records (its
    `logprob`s: log of the probabilities before sampling, as llama-server reports them
    without `post_sampling_probs`); `offset` is where the event's text starts, in bytes."""
    out = []
    for entry in event.get("completion_probabilities") or []:
        text = bytes(entry.get("bytes") or [])
        top = tuple((bytes(t.get("bytes") or []), float(t["logprob"]))
                    for t in (entry.get("top_logprobs") or [])[:n_top])
        out.append(TokenLogprob(int(entry["id"]), text, float(entry["logprob"]), offset, top))
        offset += len(text)
    return out


def _end(event: dict[str, Any]) -> StreamEnd:
    timings = event.get("timings") or {}
    prompt_ms, predicted_ms = timings.get("prompt_ms"), timings.get("predicted_ms")
    return StreamEnd(
        finish_reason=FINISH.get(str(event.get("stop_type", "none")), "stop"),
        completion_tokens=event.get("tokens_predicted"),
        prompt_tokens=event.get("tokens_evaluated"),
        cached_tokens=timings.get("cache_n", event.get("tokens_cached")),
        prompt_eval_tokens=timings.get("prompt_n"),
        prompt_seconds=prompt_ms / 1000.0 if prompt_ms is not None else None,
        decode_seconds=predicted_ms / 1000.0 if predicted_ms is not None else None,
        slot=event.get("id_slot"),
    )


def stream(client: httpx.Client, url: str, body: dict[str, Any], n_ctx: int, end: list[StreamEnd],
           logprobs: list[TokenLogprob] | None = None, n_top: int = 0) -> Iterator[str]:
    """Text pieces of one /completion stream; its StreamEnd is appended to `end`, and
    with `logprobs` (a list) each token's TokenLogprob to that list.

    Raises UpstreamFailed when the server is unreachable, refuses for its own reasons
    (5xx, no slot) or the stream breaks; the request's own faults raise what the
    in-process engine raises (ContextLengthExceeded, GrammarError, ValueError).
    """
    try:
        with client.stream("POST", url + "/completion", json=body) as response:
            if response.status_code != 200:
                raise reply_error(response.status_code, response.read().decode("utf-8", "replace"),
                                  len(body["prompt"]), n_ctx)
            offset = 0  # bytes of text generated so far
            for event in sse_data(response):
                if "error" in event:
                    raise UpstreamFailed(f"upstream error: {str(event['error'])[:300]}")
                piece = event.get("content") or ""
                if logprobs is not None:
                    logprobs.extend(token_logprobs(event, offset, n_top))
                if piece:
                    offset += len(piece.encode("utf-8"))
                    yield piece
                if event.get("stop"):
                    end.append(_end(event))
                    return
    except httpx.HTTPError as exc:
        raise UpstreamFailed(f"{type(exc).__name__}: {exc}") from None
    raise UpstreamFailed("the stream ended without its final event")
