"""POST /v1/chat/completions: HTTP in and out; the work is `adapters.openai_chat`'s."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from localtools.adapters.openai_chat import chat_completion, chat_completion_chunks
from localtools.api.body import read_json
from localtools.api.errors import json_errors, openai_error
from localtools.api.middleware import record_usage
from localtools.api.routing import serving_for
from localtools.api.streaming import sse_response, unless_disconnected


async def chat_completions(request: Request) -> Response:
    body = await read_json(request, request.app.state.settings.max_body_bytes)
    state = await serving_for(request, body)
    if isinstance(body, dict) and body.get("stream") is True:
        return await sse_response(request, chat_completion_chunks(state, body), openai_error)
    reply = await unless_disconnected(request, chat_completion(state, body))
    record_usage(request, reply["usage"])
    return JSONResponse(reply)


routes = [Route("/v1/chat/completions", json_errors(chat_completions), methods=["POST"])]
