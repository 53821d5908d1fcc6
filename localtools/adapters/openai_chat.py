"""OpenAI chat completions ⇄ the service: the one place a chat run gets OpenAI's shape.

The HTTP route, `LocalModel` and the other APIs' translators (Responses,
Anthropic Messages, Ollama: they turn their request into an OpenAI
chat-completions body and the OpenAI reply or chunks back into theirs) all go
through here, so ids, usage, finish reasons and chunk framing cannot drift.

Whole requests (no HTTP; `state` is any `ServingState`, e.g. Starlette's
`app.state`, with `.runtime` and `.settings.strict_model_name`):

    async def chat_completion(state: ServingState, body: dict) -> dict
        A `chat.completion` dict; `stream` in the body is ignored.
    def chat_completion_chunks(state: ServingState, body: dict) -> ChunkStream
        An async iterator of `chat.completion.chunk` dicts (streaming is implied;
        a usage chunk ends it when `stream_options.include_usage`). Nothing is
        yielded until the request was accepted and the model produced its first
        output, so a caller can still answer with an HTTP status until the first
        chunk. Stopping early (`aclose()`, or cancelling the task awaiting it)
        cancels the generation. `.usage` holds the usage dict once it finished.

Both raise `AdapterError` (status, message, param, code, retry_after) for
everything that goes wrong, bad input and engine failures alike; each route
maps it into its API's error shape.

Pieces, for in-process callers that build `ChatOptions` themselves:
`chat_options(req, stream)`, `reply_from_run(model, run)`,
`chunks_from_run(model, run, include_usage)`, `ChunkWriter`,
`MessageAccumulator`, `openai_finish_reason`.
"""

from __future__ import annotations

import secrets
import string
import time
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Iterable, Iterator
from typing import Any

from localtools.adapters.errors import AdapterError, bad_request, from_failure, shutting_down
from localtools.adapters.openai_logprobs import LogprobCursor, chat_logprobs
from localtools.adapters.openai_schemas import (
    ChatCompletionRequest,
    _SamplingFields,
    chat_messages,
    check_chat_request,
    parse_body,
    resolve_tools,
    response_format_dict,
    stop_list,
)
from localtools.adapters.serving import ServingState, check_model, check_running, cut_by_shutdown, start_in_thread
from localtools.dialects import ArgsDelta, CallStart, ContentDelta, Event, ReasoningDelta
from localtools.engine import SamplingParams
from localtools.service import ChatItem, ChatOptions, ChatRun, Finish, start_chat

__all__ = [
    "AdapterError",
    "ChunkStream",
    "ChunkWriter",
    "MessageAccumulator",
    "chat_completion",
    "chat_completion_chunks",
    "chat_options",
    "chunks_from_run",
    "openai_finish_reason",
    "reply_from_run",
]

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


def openai_finish_reason(reason: str | None) -> str:
    """The service's finish reason as OpenAI's: 'cancelled' only happens when nobody
    listens (or the server stops, which callers check first); it reads as 'stop'."""
    return reason if reason in ("stop", "length", "tool_calls") else "stop"


# ---------------------------------------------------------------- request → ChatOptions


def sampling_from(req: _SamplingFields, max_tokens: int | None) -> SamplingParams:
    """SamplingParams from the request; unset fields keep the engine's defaults."""
    params = SamplingParams(max_tokens=max_tokens, stop=stop_list(req.stop), seed=req.seed)
    for name in ("temperature", "top_p", "top_k", "min_p", "repeat_penalty", "presence_penalty", "frequency_penalty"):
        value = getattr(req, name)
        if value is not None:
            setattr(params, name, value)
    return params


# variables the server itself passes to the chat template
RESERVED_TEMPLATE_KWARGS = ("messages", "tools", "add_generation_prompt")


def template_kwargs_from(req: ChatCompletionRequest) -> dict[str, Any]:
    """`chat_template_kwargs` as render variables; the ones the server sets are refused."""
    kwargs = dict(req.chat_template_kwargs or {})
    for name in RESERVED_TEMPLATE_KWARGS:
        if name in kwargs:
            raise bad_request(
                f"Invalid value for 'chat_template_kwargs': {name!r} is set by the server "
                f"(use the request's own fields); remove it.",
                param=f"chat_template_kwargs.{name}",
            )
    return kwargs


def chat_options(req: ChatCompletionRequest, stream: bool) -> ChatOptions:
    """What the service needs from a validated request (raises AdapterError)."""
    tools, choice = resolve_tools(req)
    sampling = sampling_from(req, req.max_completion_tokens or req.max_tokens)
    if req.logprobs:
        sampling.logprobs = req.top_logprobs or 0
    return ChatOptions(
        tools=tools,
        tool_choice=choice,
        parallel_tool_calls=True if req.parallel_tool_calls is None else req.parallel_tool_calls,
        response_format=response_format_dict(req),
        sampling=sampling,
        template_kwargs=template_kwargs_from(req),
        stream=stream,
    )


# ---------------------------------------------------------------- run → reply


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
            call: dict[str, Any] = {
                "id": ev.id or openai_call_id(),
                "type": "function",
                "function": {"name": ev.name, "arguments": ""},
            }
            self._by_index[ev.index] = call
            self.calls.append(call)
        elif isinstance(ev, ArgsDelta):
            growing = self._by_index.get(ev.index)
            if growing is not None:
                growing["function"]["arguments"] += ev.text

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


def reply_dict(model: str, message: dict[str, Any], finish: Finish) -> dict[str, Any]:
    """A `chat.completion` for one finished run."""
    return {
        "id": random_id("chatcmpl-"),
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [{
            "index": 0, "message": message, "logprobs": None,
            "finish_reason": openai_finish_reason(finish.finish_reason),
        }],
        "usage": usage_dict(finish.stats),
        "system_fingerprint": None,
    }


class ReplyBuilder:
    """Folds a run's items (events, then one Finish) into a `chat.completion`."""

    def __init__(self) -> None:
        self.message = MessageAccumulator()
        self.finish: Finish | None = None

    def add(self, item: ChatItem) -> None:
        if isinstance(item, Finish):
            self.finish = item
        else:
            self.message.add(item)

    def reply(self, model: str) -> dict[str, Any]:
        assert self.finish is not None, "a run always ends with a Finish"
        return reply_dict(model, self.message.message(), self.finish)


def reply_from_run(model: str, run: Iterable[ChatItem]) -> dict[str, Any]:
    """The whole reply of a run iterated in this thread (in-process callers)."""
    builder = ReplyBuilder()
    for item in run:
        builder.add(item)
    return builder.reply(model)


# ---------------------------------------------------------------- run → chunks


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

    def chunks_for(self, item: ChatItem) -> list[dict[str, Any]]:
        """The chunks one run item becomes: none or one per event; the finish chunk
        (and the usage chunk when asked for) for the Finish."""
        if isinstance(item, Finish):
            return [self.finish(item.finish_reason)] + ([self.usage(item.stats)] if self.include_usage else [])
        chunk = self.event(item)
        return [] if chunk is None else [chunk]


def chunks_from_run(model: str, run: ChatRun, include_usage: bool = True) -> Iterator[dict[str, Any]]:
    """Chunks of a run iterated in this thread; closing the iterator stops generation."""
    writer = ChunkWriter(model, include_usage)
    try:
        yield writer.first()
        for item in run:
            yield from writer.chunks_for(item)
            if isinstance(item, Finish):
                return
    finally:
        run.cancel()  # no-op when finished; stops generation when the caller stops reading


# ---------------------------------------------------------------- whole requests


def _accepted(
    state: ServingState, body: Any, stream: bool
) -> tuple[ChatCompletionRequest, list[dict[str, Any]], ChatOptions]:
    """Validate a body into the request, its messages and options (raises AdapterError)."""
    req = parse_body(ChatCompletionRequest, body)
    check_chat_request(req)
    check_model(state, req.model)
    options = chat_options(req, stream)
    return req, chat_messages(req), options


async def _start(state: ServingState, messages: list[dict[str, Any]], options: ChatOptions) -> ChatRun:
    check_running(state)
    try:
        return await start_in_thread(start_chat, state.runtime, messages, options, cancel=ChatRun.cancel)
    except Exception as exc:  # noqa: BLE001 - ChatRequestError, QueueFull, or a logged 500
        raise from_failure(exc, "messages") from None


async def chat_completion(state: ServingState, body: dict[str, Any]) -> dict[str, Any]:
    """One whole `chat.completion` (see the module docstring)."""
    _, messages, options = _accepted(state, body, stream=False)
    run = await _start(state, messages, options)
    builder = ReplyBuilder()
    try:
        async for item in run:
            builder.add(item)
    except Exception as exc:  # noqa: BLE001 - mapped to a client error or a logged 500
        raise from_failure(exc, "messages") from None
    finally:
        run.cancel()
    assert builder.finish is not None
    if cut_by_shutdown(state, builder.finish.finish_reason):
        raise shutting_down()
    reply = builder.reply(state.runtime.name)
    if options.sampling.logprobs is not None:
        reply["choices"][0]["logprobs"] = chat_logprobs(LogprobCursor(run.stats).take(run.text_bytes))
    return reply


class ChunkStream:
    """The chunks of one streamed request; `usage` is set once the run finished.

    An async iterator whose `aclose()` (or the cancellation of whoever awaits
    it) cancels the generation behind it.
    """

    def __init__(self, produce: Callable[[ChunkStream], AsyncGenerator[dict[str, Any], None]]) -> None:
        self.usage: dict[str, Any] | None = None
        self._chunks = produce(self)

    def __aiter__(self) -> ChunkStream:
        return self

    async def __anext__(self) -> dict[str, Any]:
        return await self._chunks.__anext__()

    async def aclose(self) -> None:
        await self._chunks.aclose()


async def _chat_chunks(state: ServingState, body: Any, out: ChunkStream) -> AsyncGenerator[dict[str, Any], None]:
    body = dict(body, stream=True) if isinstance(body, dict) else body
    req, messages, options = _accepted(state, body, stream=True)
    include_usage = bool(req.stream_options and req.stream_options.include_usage)
    run = await _start(state, messages, options)
    items = run.__aiter__()
    try:
        item = await _next(items)
        if isinstance(item, Finish) and cut_by_shutdown(state, item.finish_reason):
            raise shutting_down()
        writer = ChunkWriter(state.runtime.name, include_usage)
        cursor = LogprobCursor(run.stats) if options.sampling.logprobs is not None else None
        yield writer.first()
        while item is not None:
            if isinstance(item, Finish):
                if cut_by_shutdown(state, item.finish_reason):
                    raise shutting_down()
                out.usage = usage_dict(item.stats)
            for chunk in writer.chunks_for(item):
                entries = cursor.take(run.text_bytes) if cursor is not None and chunk["choices"] else None
                if entries:  # the tokens of the text received so far
                    chunk["choices"][0]["logprobs"] = chat_logprobs(entries)
                yield chunk
            item = None if isinstance(item, Finish) else await _next(items)
    finally:
        run.cancel()


async def _next(items: AsyncIterator[ChatItem]) -> ChatItem | None:
    """The run's next item, None at its end; failures as AdapterError."""
    try:
        return await items.__anext__()
    except StopAsyncIteration:  # cannot happen: a run always ends with a Finish
        return None
    except Exception as exc:  # noqa: BLE001
        raise from_failure(exc, "messages") from None


def chat_completion_chunks(state: ServingState, body: dict[str, Any]) -> ChunkStream:
    """The `chat.completion.chunk` dicts of one request (see the module docstring)."""
    return ChunkStream(lambda out: _chat_chunks(state, body, out))
