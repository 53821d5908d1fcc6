"""GET /v1/models: what this server serves, OpenAI's model-list shape.

One model: its card. A pool: every served model, loaded or not; `meta.state`
says which (`unloaded`, `loading`, `loaded`, `unloading`, `failed` with `meta.error`).
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from localtools.api.errors import json_errors
from localtools.api.routing import model_rows, pool_of


def model_card(name: str, created: int, extra: dict[str, Any] | None = None) -> dict[str, Any]:
    card = {"id": name, "object": "model", "created": created, "owned_by": "localtools"}
    if extra:
        card.update(extra)
    return card


async def list_models(request: Request) -> Response:
    pool = pool_of(request)
    if pool is not None:
        rows = model_rows(pool)
        cards = [model_card(row.pop("name"), row.pop("created", 0), {"meta": row}) for row in rows]
        return JSONResponse({"object": "list", "data": cards})
    runtime = request.app.state.runtime
    meta = {"n_ctx": runtime.n_ctx, "dialect": runtime.dialect.name, "file": runtime.model_path.name}
    return JSONResponse({"object": "list", "data": [model_card(runtime.name, runtime.created, {"meta": meta})]})


routes = [Route("/v1/models", json_errors(list_models), methods=["GET"])]
