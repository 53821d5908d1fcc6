"""POST/GET/DELETE /v1/responses: the OpenAI Responses API over the chat pipeline.

Translation is `adapters.responses`' (and `responses_stream`'s); finished
responses go to the `ResponseStore` unless `store: false`, so a later request
can continue from one with `previous_response_id`. Errors are OpenAI's shape.
"""

from __future__ import annotations

import time
from typing import Any

import anyio.to_thread
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from localtools.adapters.errors import AdapterError
from localtools.adapters.openai_chat import chat_completion, chat_completion_chunks
from localtools.adapters.responses import (
    ResponsesRequest,
    assistant_message,
    response_from_completion,
    translate_request,
)
from localtools.adapters.responses_stream import ResponsesStream
from localtools.adapters.translate import new_id
from localtools.api.body import read_json
from localtools.api.errors import json_errors
from localtools.api.routing import serving_for
from localtools.api.streaming import finished_reply
from localtools.api.translated_stream import translated_stream
from localtools.response_store import ResponseStore, StoredResponse


def response_store(state: Any) -> ResponseStore:
    """The app's store, opened on first use (`app.state.response_store` may be set beforehand)."""
    store = getattr(state, "response_store", None)
    if store is None:
        store = ResponseStore()
        state.response_store = store
    return store


def _not_found(rid: str, param: str | None = None) -> AdapterError:
    if param:
        return AdapterError(404, f"Previous response with id {rid!r} not found.", param=param,
                            code="previous_response_not_found")
    return AdapterError(404, f"No response found with id {rid!r}.", code="not_found")


async def _previous(state: Any, body: Any) -> StoredResponse | None:
    rid = body.get("previous_response_id") if isinstance(body, dict) else None
    if not isinstance(rid, str):
        return None  # absent, or a wrong type the translator reports
    stored = await anyio.to_thread.run_sync(response_store(state).get, rid)
    if stored is None:
        raise _not_found(rid, "previous_response_id")
    return stored


async def _keep(state: Any, req: ResponsesRequest, response: dict[str, Any]) -> None:
    if req.store:
        messages = req.history + [assistant_message(response["output"])]
        await anyio.to_thread.run_sync(response_store(state).put, response, messages)


async def create_response(request: Request) -> Response:
    state = request.app.state
    body = await read_json(request, state.settings.max_body_bytes)
    previous = await _previous(state, body)
    req = translate_request(body, previous.messages if previous else None)
    host = await serving_for(request, body)
    if req.stream:
        stream = ResponsesStream(new_id("resp_"), host.runtime.name, req.echo, int(time.time()))

        async def store_it() -> None:
            assert stream.response is not None
            await _keep(state, req, stream.response)

        def error_event(exc: AdapterError) -> dict[str, Any]:
            return stream.error_event(exc.message, exc.code, exc.param)

        chunks = chat_completion_chunks(host, req.chat)
        return await translated_stream(request, chunks, stream, error_event, on_finish=store_it)
    completion = await finished_reply(request, chat_completion(host, req.chat))
    response = response_from_completion(completion, req.echo)
    await _keep(state, req, response)
    return JSONResponse(response)


async def get_response(request: Request) -> Response:
    rid = request.path_params["response_id"]
    stored = await anyio.to_thread.run_sync(response_store(request.app.state).get, rid)
    if stored is None:
        raise _not_found(rid)
    return JSONResponse(stored.response)


async def delete_response(request: Request) -> Response:
    rid = request.path_params["response_id"]
    if not await anyio.to_thread.run_sync(response_store(request.app.state).delete, rid):
        raise _not_found(rid)
    return JSONResponse({"id": rid, "object": "response.deleted", "deleted": True})


routes = [
    Route("/v1/responses", json_errors(create_response), methods=["POST"]),
    Route("/v1/responses/{response_id}", json_errors(get_response), methods=["GET"]),
    Route("/v1/responses/{response_id}", json_errors(delete_response), methods=["DELETE"]),
]
