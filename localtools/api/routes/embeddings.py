"""POST /v1/embeddings: HTTP in and out; the work is `adapters.openai_embeddings`'."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from localtools.adapters.openai_embeddings import create_embeddings
from localtools.api.body import read_json
from localtools.api.errors import json_errors
from localtools.api.middleware import record_usage
from localtools.api.routing import serving_for


async def embeddings(request: Request) -> Response:
    body = await read_json(request, request.app.state.settings.max_body_bytes)
    state = await serving_for(request, body)
    reply = await create_embeddings(state, body)
    record_usage(request, dict(reply["usage"], completion_tokens=0))
    return JSONResponse(reply)


routes = [Route("/v1/embeddings", json_errors(embeddings), methods=["POST"])]
