"""HTTP for the APIs translated onto chat completions: their error shapes and their streams.

Each foreign API (Responses, Anthropic Messages, Ollama) answers errors in its
own body shape and streams its own events: typed SSE (`event:` + `data:`) for
Responses and Messages, NDJSON lines for Ollama. The chunk stream behind them is
the OpenAI adapter's; its first chunk is awaited before any header goes out, so
a refused request still gets its HTTP status.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, Protocol

from sse_starlette.sse import EventSourceResponse
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from localtools.adapters.errors import AdapterError, server_error
from localtools.adapters.openai_chat import ChunkStream
from localtools.api.errors import ErrorShape, Handler, json_errors
from localtools.api.middleware import record_usage
from localtools.api.streaming import PING_S, SHUTDOWN_GRACE_S, unless_disconnected

log = logging.getLogger("localtools.server")

class StreamTranslator(Protocol):
    def start(self) -> list[dict[str, Any]]: ...
    def feed(self, chunk: dict[str, Any]) -> list[dict[str, Any]]: ...
    def finish(self) -> list[dict[str, Any]]: ...


def errors_as(shape: ErrorShape) -> Callable[[Handler], Handler]:
    """`json_errors` with this API's error `shape`, as a decorator for its routes."""

    def decorate(handler: Handler) -> Handler:
        return json_errors(handler, shape)

    return decorate


async def translated_stream(
    request: Request,
    chunks: ChunkStream,
    translator: StreamTranslator,
    error_event: ErrorShape,
    ndjson: bool = False,
    on_finish: Callable[[], Awaitable[None]] | None = None,
) -> Response:
    """Stream `chunks` through `translator` as typed SSE events (or NDJSON lines).

    A failure after the headers went out becomes one `error_event` and ends the
    stream; `on_finish` runs once the whole reply was sent (e.g. to store it).
    """
    first = await unless_disconnected(request, chunks.__anext__())

    async def events() -> AsyncIterator[dict[str, Any]]:
        try:
            for event in translator.start() + translator.feed(first):
                yield event
            async for chunk in chunks:
                for event in translator.feed(chunk):
                    yield event
            record_usage(request, chunks.usage)
            for event in translator.finish():
                yield event
            if on_finish is not None:
                await on_finish()
        except asyncio.CancelledError:
            raise
        except AdapterError as exc:  # headers are sent: report in the stream
            yield error_event(exc)
        except Exception:  # noqa: BLE001 - never a traceback to the client
            log.exception("unhandled error in the stream of %s", request.url.path)
            yield error_event(server_error())
        finally:
            await chunks.aclose()

    if ndjson:
        lines = (json.dumps(e, ensure_ascii=False) + "\n" async for e in events())
        return StreamingResponse(lines, media_type="application/x-ndjson")
    typed = ({"event": e.get("type", "message"), "data": json.dumps(e, ensure_ascii=False)} async for e in events())
    return EventSourceResponse(typed, ping=PING_S, shutdown_grace_period=SHUTDOWN_GRACE_S)
