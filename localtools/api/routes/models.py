"""GET /v1/models: the one model this server serves, OpenAI's model-list shape."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from localtools.api.errors import json_errors


def model_card(name: str, created: int, extra: dict[str, Any] | None = None) -> dict[str, Any]:
    card = {"id": name, "object": "model", "created": created, "owned_by": "localtools"}
    if extra:
        card.update(extra)
    return card


async def list_models(request: Request) -> Response:
    runtime = request.app.state.runtime
    meta = {"n_ctx": runtime.n_ctx, "dialect": runtime.dialect.name, "file": runtime.model_path.name}
    return JSONResponse({"object": "list", "data": [model_card(runtime.name, runtime.created, {"meta": meta})]})


routes = [Route("/v1/models", json_errors(list_models), methods=["GET"])]
