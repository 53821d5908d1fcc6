"""POST /v1/chat/completions: HTTP in and out; the work is `adapters.openai_chat`'s."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from localtools.adapters.openai_chat import chat_completion, chat_completion_chunks
from localtools.api.errors import json_errors
from localtools.api.streaming import json_or_sse


async def chat_completions(request: Request) -> Response:
    return await json_or_sse(request, chat_completion, chat_completion_chunks)


routes = [Route("/v1/chat/completions", json_errors(chat_completions), methods=["POST"])]
