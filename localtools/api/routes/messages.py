"""POST /v1/messages and /v1/messages/count_tokens: Anthropic's Messages API over the chat pipeline.

Translation is `adapters.anthropic`'s; errors use Anthropic's shape
`{"type": "error", "error": {"type", "message"}}`, streams its named SSE events.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from localtools.adapters.anthropic import (
    MessagesStream,
    error_body,
    error_type,
    message_from_completion,
    translate_request,
)
from localtools.adapters.errors import AdapterError
from localtools.adapters.openai_chat import chat_completion, chat_completion_chunks
from localtools.adapters.prompt_tokens import count_prompt_tokens
from localtools.api.body import read_json
from localtools.api.errors import message_naming_param
from localtools.api.routing import serving_for
from localtools.api.streaming import finished_reply
from localtools.api.translated_stream import errors_as, translated_stream


def anthropic_error(exc: AdapterError) -> dict[str, Any]:
    return error_body(error_type(exc.status), message_naming_param(exc))


async def create_message(request: Request) -> Response:
    body = await read_json(request, request.app.state.settings.max_body_bytes)
    chat = translate_request(body)
    state = await serving_for(request, body)
    stops = chat.get("stop") or []
    if chat["stream"]:
        stream = MessagesStream(state.runtime.name, stops)
        return await translated_stream(request, chat_completion_chunks(state, chat), stream, anthropic_error)
    completion = await finished_reply(request, chat_completion(state, chat))
    return JSONResponse(message_from_completion(completion, stops))


async def count_tokens(request: Request) -> Response:
    body = await read_json(request, request.app.state.settings.max_body_bytes)
    if isinstance(body, dict):
        body = {**body, "max_tokens": 1, "stream": False}  # count_tokens takes no max_tokens
    chat = translate_request(body)
    state = await serving_for(request, body)
    chat.pop("stream_options", None)
    return JSONResponse({"input_tokens": await count_prompt_tokens(state, chat)})


routes = [
    Route("/v1/messages", errors_as(anthropic_error)(create_message), methods=["POST"]),
    Route("/v1/messages/count_tokens", errors_as(anthropic_error)(count_tokens), methods=["POST"]),
]
