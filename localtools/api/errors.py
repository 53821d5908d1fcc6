"""OpenAI-shaped errors: `{"error": {"message", "type", "param", "code"}}`.

Every failure a client of the OpenAI routes sees goes through here, so none of
them can carry a traceback and all of them have the shape OpenAI clients parse.
The adapters raise the neutral `AdapterError`; its OpenAI `type` follows from
the status. Routes of other APIs pass their own `shape` to `json_errors`.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from localtools.adapters.errors import AdapterError, server_error

log = logging.getLogger("localtools.server")


def error_body(message: str, type: str, param: str | None = None, code: str | None = None) -> dict[str, Any]:
    return {"error": {"message": message, "type": type, "param": param, "code": code}}


def error_type(status: int) -> str:
    if status == 429:
        return "rate_limit_error"
    return "server_error" if status >= 500 else "invalid_request_error"


def openai_error(exc: AdapterError) -> dict[str, Any]:
    return error_body(exc.message, error_type(exc.status), exc.param, exc.code)


ErrorShape = Callable[[AdapterError], dict[str, Any]]


def message_naming_param(exc: AdapterError) -> str:
    """The message with its param in front, for error shapes that have no `param` field."""
    return f"{exc.param}: {exc.message}" if exc.param and exc.param not in exc.message else exc.message


def error_response(
    exc: AdapterError, headers: dict[str, str] | None = None, shape: ErrorShape = openai_error
) -> JSONResponse:
    """The error as a JSON response in `shape` (OpenAI's unless another API's route says)."""
    headers = dict(headers or {})
    if exc.retry_after is not None:
        headers["Retry-After"] = str(exc.retry_after)
    return JSONResponse(shape(exc), status_code=exc.status, headers=headers)


class ClientLeft(Exception):
    """The client disconnected before its answer was ready: nobody to answer."""


# nginx's status for "client closed request": what the access log shows for such a request
CLIENT_LEFT_STATUS = 499

Handler = Callable[[Request], Awaitable[Response]]


def json_errors(handler: Handler, shape: ErrorShape = openai_error) -> Handler:
    """Every error becomes an error body in `shape` (OpenAI's by default; another API's
    routes pass theirs); unexpected ones are logged, not shown."""

    async def wrapped(request: Request) -> Response:
        try:
            return await handler(request)
        except AdapterError as exc:
            return error_response(exc, shape=shape)
        except ClientLeft:
            return Response(status_code=CLIENT_LEFT_STATUS)
        except Exception:  # noqa: BLE001 - the catch-all: never a traceback to the client
            log.exception("unhandled error on %s %s", request.method, request.url.path)
            return error_response(server_error(), shape=shape)

    wrapped.__name__ = getattr(handler, "__name__", "endpoint")
    return wrapped
