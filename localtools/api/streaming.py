"""What every route that generates needs from HTTP: noticing that the client left,
sending a chunk stream as server-sent events, and the one body → JSON-or-SSE shape
of the OpenAI generation routes (`json_or_sse`).

A route hands an adapter's `ChunkStream` to `sse_response`; the first chunk is
awaited before any header goes out, so a refused request (queue full, prompt
too long, server stopping) still gets its HTTP status.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, TypeVar

from sse_starlette.sse import EventSourceResponse
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from localtools.adapters.errors import AdapterError, server_error
from localtools.adapters.openai_chat import ChunkStream
from localtools.adapters.serving import ServingState
from localtools.api.body import read_json
from localtools.api.errors import ClientLeft, openai_error
from localtools.api.middleware import record_usage
from localtools.api.routing import serving_for

log = logging.getLogger("localtools.server")
T = TypeVar("T")

# On shutdown, open streams get this long to send their last event (the generation is
# cancelled at once, so they end in well under a second) before they are cut.
SHUTDOWN_GRACE_S = 3.0
PING_S = 15


async def _disconnected(request: Request) -> None:
    while True:
        message = await request.receive()
        if message["type"] == "http.disconnect":
            return


async def unless_disconnected(request: Request, work: Awaitable[T]) -> T:
    """`work`'s result; if the client goes away first, `work` is cancelled (which
    cancels its generation) and ClientLeft is raised. The body must be read already."""
    task = asyncio.ensure_future(work)
    watcher = asyncio.ensure_future(_disconnected(request))
    try:
        await asyncio.wait({task, watcher}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        watcher.cancel()
        if not task.done():
            task.cancel()
    if not task.done() or task.cancelled():
        raise ClientLeft()
    return task.result()


def sse_data(data: dict[str, Any] | str) -> dict[str, str]:
    return {"data": data if isinstance(data, str) else json.dumps(data, ensure_ascii=False)}


async def sse_response(
    request: Request,
    chunks: ChunkStream,
    error_event: Callable[[AdapterError], dict[str, Any]],
    done: str | None = "[DONE]",
) -> Response:
    """Stream `chunks` as SSE `data:` events, then `done`; a failure after the
    headers went out becomes one `error_event` and ends the stream without `done`."""
    first = await unless_disconnected(request, chunks.__anext__())

    async def events() -> AsyncIterator[dict[str, str]]:
        try:
            yield sse_data(first)
            async for chunk in chunks:
                yield sse_data(chunk)
            record_usage(request, chunks.usage)
            if done is not None:
                yield sse_data(done)
        except asyncio.CancelledError:
            raise
        except AdapterError as exc:  # headers are sent: report in the stream
            yield sse_data(error_event(exc))
        except Exception:  # noqa: BLE001 - never a traceback to the client
            log.exception("unhandled error in the stream of %s", request.url.path)
            yield sse_data(error_event(server_error()))
        finally:
            await chunks.aclose()

    return EventSourceResponse(events(), ping=PING_S, shutdown_grace_period=SHUTDOWN_GRACE_S)


async def finished_reply(request: Request, work: Awaitable[dict[str, Any]]) -> dict[str, Any]:
    """A whole (non-streamed) reply, unless the client leaves first (`unless_disconnected`);
    its token usage goes to the access log."""
    reply = await unless_disconnected(request, work)
    record_usage(request, reply["usage"])
    return reply


async def json_or_sse(
    request: Request,
    reply: Callable[[ServingState, Any], Awaitable[dict[str, Any]]],
    chunks: Callable[[ServingState, Any], ChunkStream],
) -> Response:
    """An OpenAI generation route: the JSON body read, the model that serves it found
    (`routing.serving_for`); with `stream: true` the `chunks` as SSE, else the whole
    `reply` as JSON."""
    body = await read_json(request, request.app.state.settings.max_body_bytes)
    state = await serving_for(request, body)
    if isinstance(body, dict) and body.get("stream") is True:
        return await sse_response(request, chunks(state, body), openai_error)
    return JSONResponse(await finished_reply(request, reply(state, body)))
