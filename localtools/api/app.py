"""The OpenAI-compatible HTTP app (Starlette): composes middleware, routes and error handlers.

The endpoints live in `localtools.api.routes` (one module per API area) and
find what they serve on `app.state`; the translation between OpenAI's shapes
and the service is `localtools.adapters`'. Anything unexpected becomes a
generic 500: tracebacks stay in the server log.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from localtools.api.cors import cors_middleware
from localtools.api.errors import ErrorShape, error_body
from localtools.api.middleware import AccessAndAuth
from localtools.api.routes import chat, completions, embeddings, health, messages, models, ollama, responses
from localtools.api.routing import ReleaseLeases
from localtools.registry import ModelPool
from localtools.runtime import ModelRuntime

# the APIs whose clients parse another error shape than OpenAI's
ERROR_SHAPES: dict[str, ErrorShape] = {"/v1/messages": messages.anthropic_error, "/api/": ollama.ollama_error}


@dataclass
class ServerSettings:
    api_key: str | None = None
    max_body_bytes: int = 8 * 1024 * 1024
    strict_model_name: bool = False
    cors_origins: list[str] = field(default_factory=list)  # empty: CORS off (api/cors.py)


async def http_error(request: Request, exc: Exception) -> Response:
    """Unknown routes and wrong methods, in OpenAI's error shape."""
    assert isinstance(exc, HTTPException)
    if exc.status_code == 404:
        message = (f"Unknown route: {request.method} {request.url.path} "
                   "(see /v1/chat/completions, /v1/completions, /v1/embeddings, /v1/responses, /v1/messages, /api/chat, "
                   "/v1/models, /health).")
    elif exc.status_code == 405:
        message = f"Method {request.method} is not allowed on {request.url.path}."
    else:
        message = str(exc.detail)
    code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code)
    return JSONResponse(
        error_body(message, "invalid_request_error", None, code),
        status_code=exc.status_code,
        headers=dict(exc.headers or {}),
    )


def create_app(runtime: ModelRuntime | ModelPool, settings: ServerSettings | None = None) -> Starlette:
    """The ASGI app serving one runtime, or a pool of models routed by each request's `model`."""
    settings = settings or ServerSettings()
    middleware: list[Middleware] = [  # CORS outermost: a preflight carries no API key
        *filter(None, [cors_middleware(settings.cors_origins)]),
        Middleware(AccessAndAuth, api_key=settings.api_key, error_shapes=ERROR_SHAPES),
    ]
    if isinstance(runtime, ModelPool):
        middleware.append(Middleware(ReleaseLeases))
    app = Starlette(
        routes=(health.routes + models.routes + chat.routes + completions.routes + embeddings.routes
                + responses.routes + messages.routes + ollama.routes),
        middleware=middleware,
        exception_handlers={HTTPException: http_error},
    )
    app.state.settings = settings
    if isinstance(runtime, ModelPool):
        app.state.pool = runtime
        # the pool already refused unknown names; a routed runtime accepts its request
        app.state.pool_settings = replace(settings, strict_model_name=False)
    else:
        app.state.runtime = runtime
        app.state.scheduler = runtime.scheduler
    return app
