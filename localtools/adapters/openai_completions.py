"""OpenAI text completions (/v1/completions) ⇄ the service: raw prompt in, text out.

    async def text_completion(state: ServingState, body: dict) -> dict
        A `text_completion` dict; `stream` in the body is ignored.
    def text_completion_chunks(state: ServingState, body: dict) -> ChunkStream
        Streamed `text_completion` dicts (a usage chunk last when
        `stream_options.include_usage`), with the same contract as
        `openai_chat.chat_completion_chunks`.

Both raise `AdapterError`.
"""

from __future__ import annotations

import time
from collections.abc import AsyncGenerator, AsyncIterator
from typing import Any

from localtools.adapters.errors import bad_request, from_failure, shutting_down
from localtools.adapters.openai_chat import ChunkStream, openai_finish_reason, random_id, sampling_from, usage_dict
from localtools.adapters.openai_logprobs import LogprobCursor, completion_logprobs
from localtools.adapters.openai_schemas import CompletionRequest, check_completion_request, parse_body
from localtools.adapters.serving import ServingState, check_model, check_running, cut_by_shutdown
from localtools.service import start_completion, start_fim

DEFAULT_MAX_TOKENS = 16  # OpenAI's default for /v1/completions


def _completion_dict(
    rid: str, model: str, created: int, text: str, finish: str | None, usage: dict[str, Any] | None = None
) -> dict[str, Any]:
    """A whole `text_completion` (with usage) or one streamed chunk of it (without)."""
    reply: dict[str, Any] = {
        "id": rid,
        "object": "text_completion",
        "created": created,
        "model": model,
        "choices": [{"index": 0, "text": text, "logprobs": None, "finish_reason": finish}],
    }
    if usage is not None:
        reply["usage"] = usage
    reply["system_fingerprint"] = None
    return reply


def _start(state: ServingState, body: Any) -> tuple[Any, bool, bool]:
    """Validate and submit (raises AdapterError): the generation handle, include_usage,
    and whether logprobs were asked for."""
    req = parse_body(CompletionRequest, body)
    check_completion_request(req)
    check_model(state, req.model)
    prompt = req.prompt if isinstance(req.prompt, str) else req.prompt[0]
    if not prompt and not req.suffix:
        raise bad_request("Invalid value for 'prompt': the prompt is empty; send some text.", param="prompt")
    sampling = sampling_from(req, req.max_tokens or DEFAULT_MAX_TOKENS)
    sampling.logprobs = req.logprobs
    check_running(state)
    try:
        if req.suffix:  # fill-in-the-middle ("" is no suffix: a plain completion)
            handle = start_fim(state.runtime, prompt, req.suffix, sampling)
        else:
            handle = start_completion(state.runtime, prompt, sampling)
    except Exception as exc:  # noqa: BLE001 - QueueFull, or a logged 500
        raise from_failure(exc, "prompt") from None
    return handle, bool(req.stream_options and req.stream_options.include_usage), req.logprobs is not None


async def text_completion(state: ServingState, body: dict[str, Any]) -> dict[str, Any]:
    """One whole `text_completion` (see the module docstring)."""
    handle, _, logprobs = _start(state, body)
    rid, created = random_id("cmpl-"), int(time.time())
    try:
        text = "".join([piece async for piece in handle])
    except Exception as exc:  # noqa: BLE001
        raise from_failure(exc, "prompt") from None
    finally:
        handle.cancel()
    stats = handle.stats
    if cut_by_shutdown(state, stats.finish_reason):
        raise shutting_down()
    finish = openai_finish_reason(stats.finish_reason)
    reply = _completion_dict(rid, state.runtime.name, created, text, finish, usage_dict(stats))
    if logprobs:
        cursor = LogprobCursor(stats)
        reply["choices"][0]["logprobs"] = completion_logprobs(cursor.take(len(text.encode("utf-8"))), cursor)
    return reply


async def _next_piece(pieces: AsyncIterator[str]) -> str | None:
    try:
        return await pieces.__anext__()
    except StopAsyncIteration:
        return None
    except Exception as exc:  # noqa: BLE001
        raise from_failure(exc, "prompt") from None


async def _text_chunks(state: ServingState, body: Any, out: ChunkStream) -> AsyncGenerator[dict[str, Any], None]:
    body = dict(body, stream=True) if isinstance(body, dict) else body
    handle, include_usage, logprobs = _start(state, body)
    rid, created, model = random_id("cmpl-"), int(time.time()), state.runtime.name
    pieces = handle.__aiter__()
    cursor = LogprobCursor(handle.stats) if logprobs else None
    sent = 0  # UTF-8 bytes of text sent
    try:
        piece = await _next_piece(pieces)
        while piece is not None:
            chunk = _completion_dict(rid, model, created, piece, None)
            if cursor is not None:
                sent += len(piece.encode("utf-8"))
                chunk["choices"][0]["logprobs"] = completion_logprobs(cursor.take(sent), cursor)
            yield chunk
            piece = await _next_piece(pieces)
        stats = handle.stats
        if cut_by_shutdown(state, stats.finish_reason):
            raise shutting_down()
        out.usage = usage_dict(stats)
        yield _completion_dict(rid, model, created, "", openai_finish_reason(stats.finish_reason))
        if include_usage:
            yield {"id": rid, "object": "text_completion", "created": created, "model": model,
                   "choices": [], "usage": out.usage}
    finally:
        handle.cancel()


def text_completion_chunks(state: ServingState, body: dict[str, Any]) -> ChunkStream:
    """Streamed `text_completion` dicts of one request (see the module docstring)."""
    return ChunkStream(lambda out: _text_chunks(state, body, out))
