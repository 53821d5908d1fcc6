"""API-key check on /v1 routes and one access-log line per request."""

from __future__ import annotations

import hmac
import logging
import time
from typing import Any

from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from localtools.adapters.errors import AdapterError
from localtools.api.errors import ErrorShape, error_response, openai_error

access_log = logging.getLogger("localtools.access")

LOG_KEY = "localtools.log"  # scope key where handlers leave token counts for the access log


def record_usage(request: Request, usage: dict[str, Any] | None) -> None:
    """Token counts for this request's access-log line."""
    if usage is not None:
        request.scope.setdefault(LOG_KEY, {}).update(
            prompt_tokens=usage["prompt_tokens"], completion_tokens=usage["completion_tokens"]
        )


def _unauthorized() -> AdapterError:
    return AdapterError(
        401,
        "Incorrect or missing API key: send the header 'Authorization: Bearer YOUR_KEY' "
        "with the key the server was started with (--api-key).",
        code="invalid_api_key",
    )


class AccessAndAuth:
    """Checks the API key on /v1 and /api routes and writes one log line per request.

    `error_shapes` maps a path prefix to the error shape of the API served there, so
    a refused key reaches each client in the shape its SDK parses."""

    def __init__(
        self, app: ASGIApp, api_key: str | None, error_shapes: dict[str, ErrorShape] | None = None
    ) -> None:
        self.app = app
        self.api_key = api_key
        self.error_shapes = error_shapes or {}

    def _shape(self, path: str) -> ErrorShape:
        for prefix, shape in self.error_shapes.items():
            if path.startswith(prefix):
                return shape
        return openai_error

    def _authorized(self, scope: Scope) -> bool:
        if not self.api_key or not scope["path"].startswith(("/v1", "/api/")):
            return True
        for key, value in scope.get("headers", []):
            if key == b"authorization":
                text = value.decode("latin-1")
                scheme, _, token = text.partition(" ")
                return scheme.lower() == "bearer" and hmac.compare_digest(token.strip().encode(), self.api_key.encode())
            if key == b"x-api-key":  # the anthropic SDK's header
                return hmac.compare_digest(value.strip(), self.api_key.encode())
        return False

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = {"code": 0}
        scope[LOG_KEY] = {}

        async def send_logged(message: Message) -> None:
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
            await send(message)

        try:
            if self._authorized(scope):
                await self.app(scope, receive, send_logged)
            else:
                response = error_response(
                    _unauthorized(), headers={"WWW-Authenticate": "Bearer"}, shape=self._shape(scope["path"])
                )
                await response(scope, receive, send_logged)
        finally:
            _log_line(scope, status["code"], start)


def _log_line(scope: Scope, status: int, start: float) -> None:
    info = scope[LOG_KEY]
    tokens = ""
    if "prompt_tokens" in info:
        tokens = f" prompt={info['prompt_tokens']} completion={info['completion_tokens']}"
    access_log.info(
        "%s %s %s %.0fms%s",
        scope.get("method", "-"),
        scope["path"],
        status or "-",
        (time.perf_counter() - start) * 1000,
        tokens,
    )
