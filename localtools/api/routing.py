"""Which runtime serves a request: the app's one runtime, or the pool model its `model` names.

With one model (`create_app(runtime)`) every route serves `app.state` as before.
With a `ModelPool` (`create_app(pool)`), a generating route calls `serving_for`
once it has read the body: the named model is loaded if needed and leased for
the whole response (a stream included); `ReleaseLeases` hands the lease back
after the last byte is sent, so the pool never unloads a model mid-answer.
A request naming no model goes to the pool's first model.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from starlette.requests import Request
from starlette.types import ASGIApp, Receive, Scope, Send

from localtools.adapters.errors import AdapterError, shutting_down
from localtools.registry import LOADED, ModelLoadFailed, ModelPool, UnknownModel

LEASES_KEY = "localtools.leases"


@dataclass
class RequestHost:
    """A `ServingState` for one request: the routed runtime and the app's settings."""

    runtime: Any
    settings: Any


def pool_of(request: Request) -> ModelPool | None:
    return getattr(request.app.state, "pool", None)


def requested_name(body: Any, *keys: str) -> str | None:
    """The body's model name (the first of `keys` that holds a non-empty string)."""
    if isinstance(body, dict):
        for key in keys or ("model",):
            value = body.get(key)
            if isinstance(value, str) and value:
                return value
    return None


def unknown_model(exc: UnknownModel) -> AdapterError:
    return AdapterError(
        404,
        f"The model {exc.name!r} does not exist: this server serves {', '.join(map(repr, exc.served))}.",
        param="model",
        code="model_not_found",
    )


async def serving_for(request: Request, body: Any, *keys: str) -> Any:
    """The host the adapters serve this request from (raises AdapterError: 404 for an
    unknown model, 503 for one that cannot be loaded or when the server stops)."""
    state = request.app.state
    pool = pool_of(request)
    if pool is None:
        return state
    name = requested_name(body, *keys)
    try:
        lease = await pool.acquire(name)
    except UnknownModel as exc:
        raise unknown_model(exc) from None
    except ModelLoadFailed as exc:
        raise AdapterError(503, f"The model {exc.name!r} could not be loaded: {exc.reason}",
                           param="model", code="model_load_failed") from None
    except RuntimeError:
        raise shutting_down() from None
    request.scope.setdefault(LEASES_KEY, []).append(lease)
    return RequestHost(lease.runtime, state.pool_settings)


def loaded_runtimes(pool: ModelPool) -> list[Any]:
    return [slot.runtime for slot in pool.slots.values() if slot.state == LOADED and slot.runtime is not None]


def model_rows(pool: ModelPool) -> list[dict[str, Any]]:
    """The pool's status rows, with what a loaded runtime adds (file, dialect, n_ctx);
    a runtime without a local file (another kind of engine) adds what it has."""
    rows = pool.status()
    for row in rows:
        runtime = pool.slots[row["name"]].runtime
        if runtime is None:
            continue
        path = getattr(runtime, "model_path", None)
        if path is not None:
            row["file"] = path.name
        row.update(dialect=runtime.dialect.name, n_ctx=runtime.n_ctx, created=getattr(runtime, "created", 0))
    return rows


class ReleaseLeases:
    """Hands back the model leases a request took once its response is fully sent."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        leases: list[Any] = []
        scope[LEASES_KEY] = leases
        try:
            await self.app(scope, receive, send)
        finally:
            for lease in leases:
                lease.release()
