"""GET /health: liveness and queue depth for probes (no API key needed)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from localtools.api.errors import json_errors


async def health(request: Request) -> Response:
    state = request.app.state
    return JSONResponse({"status": "ok", "model": state.runtime.name, "queue": state.scheduler.queue_depth()})


routes = [Route("/health", json_errors(health), methods=["GET"])]
