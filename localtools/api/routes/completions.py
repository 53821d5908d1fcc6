"""POST /v1/completions: HTTP in and out; the work is `adapters.openai_completions`'s."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from localtools.adapters.openai_completions import text_completion, text_completion_chunks
from localtools.api.errors import json_errors
from localtools.api.streaming import json_or_sse


async def completions(request: Request) -> Response:
    return await json_or_sse(request, text_completion, text_completion_chunks)


routes = [Route("/v1/completions", json_errors(completions), methods=["POST"])]
