"""GET /health: liveness and queue depth for probes (no API key needed)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from localtools.api.errors import json_errors
from localtools.api.routing import loaded_runtimes, pool_of


async def health(request: Request) -> Response:
    pool = pool_of(request)
    if pool is not None:  # the default model's name; queue: every loaded model's together
        queue = sum(runtime.scheduler.queue_depth() for runtime in loaded_runtimes(pool))
        return JSONResponse({"status": "ok", "model": pool.default.name, "queue": queue,
                             "models": {row["name"]: row["state"] for row in pool.status()}})
    state = request.app.state
    return JSONResponse({"status": "ok", "model": state.runtime.name, "queue": state.scheduler.queue_depth()})


routes = [Route("/health", json_errors(health), methods=["GET"])]
