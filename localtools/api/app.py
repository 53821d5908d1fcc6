"""The OpenAI-compatible HTTP app (Starlette): routes, body reading, auth, logging.

Requests are validated into schemas, handed to `localtools.service`, and the
events that come back are shaped by `localtools.api.responses`. Anything
unexpected becomes a generic 500: tracebacks stay in the server log.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
import math
import re
import time
from dataclasses import dataclass
from typing import Any, AsyncIterator, Awaitable, Callable

from sse_starlette.sse import EventSourceResponse
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from localtools.api.errors import APIError, bad_request, error_body, error_response, server_error
from localtools.api.responses import (
    ChunkWriter,
    MessageAccumulator,
    chat_completion,
    model_card,
    openai_finish_reason,
    random_id,
    text_completion,
    text_completion_chunk,
    usage_dict,
)
from localtools.api.schemas import (
    ChatCompletionRequest,
    CompletionRequest,
    _SamplingFields,
    chat_messages,
    check_chat_request,
    check_completion_request,
    parse_body,
    resolve_tools,
    response_format_dict,
    stop_list,
)
from localtools.engine import ContextLengthExceeded, GrammarError, SamplingParams
from localtools.runtime import ModelRuntime
from localtools.scheduler import QueueFull
from localtools.service import ChatOptions, ChatRequestError, Finish, start_chat, start_completion

log = logging.getLogger("localtools.server")
access_log = logging.getLogger("localtools.access")

LOG_KEY = "localtools.log"  # scope key where handlers leave token counts for the access log
DEFAULT_COMPLETION_MAX_TOKENS = 16  # OpenAI's default for /v1/completions
# On shutdown, open streams get this long to send their last event (the generation is
# cancelled at once, so they end in well under a second) before they are cut.
SHUTDOWN_GRACE_S = 3.0


@dataclass
class ServerSettings:
    api_key: str | None = None
    max_body_bytes: int = 8 * 1024 * 1024
    strict_model_name: bool = False


# ---------------------------------------------------------------- middleware


class AccessAndAuth:
    """Checks the API key on /v1 routes and writes one log line per request."""

    def __init__(self, app: ASGIApp, api_key: str | None) -> None:
        self.app = app
        self.api_key = api_key

    def _authorized(self, scope: Scope) -> bool:
        if not self.api_key or not scope["path"].startswith("/v1"):
            return True
        for key, value in scope.get("headers", []):
            if key == b"authorization":
                text = value.decode("latin-1")
                scheme, _, token = text.partition(" ")
                return scheme.lower() == "bearer" and hmac.compare_digest(token.strip().encode(), self.api_key.encode())
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
                exc = APIError(
                    401,
                    "Incorrect or missing API key: send the header 'Authorization: Bearer YOUR_KEY' "
                    "with the key the server was started with (--api-key).",
                    param=None,
                    code="invalid_api_key",
                    headers={"WWW-Authenticate": "Bearer"},
                )
                await error_response(exc)(scope, receive, send_logged)
        finally:
            info = scope[LOG_KEY]
            tokens = ""
            if "prompt_tokens" in info:
                tokens = f" prompt={info['prompt_tokens']} completion={info['completion_tokens']}"
            access_log.info(
                "%s %s %s %.0fms%s",
                scope.get("method", "-"),
                scope["path"],
                status["code"] or "-",
                (time.perf_counter() - start) * 1000,
                tokens,
            )


# ---------------------------------------------------------------- helpers


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]", re.ASCII)


def _unpaired_surrogate(value: Any, path: str = "") -> str | None:
    """The param path of a string holding a lone UTF-16 surrogate (JSON allows the
    escape, UTF-8 cannot encode it, so the tokenizer would fail), else None."""
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return path or "body"
        return None
    items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
    for key, item in items:
        where = f"{path}[{key}]" if isinstance(key, int) else (f"{path}.{key}" if path else str(key))
        found = _unpaired_surrogate(key, where) if isinstance(key, str) else None
        found = found or _unpaired_surrogate(item, where)
        if found:
            return found
    return None


async def read_json(request: Request, limit: int) -> Any:
    """The body as JSON, with errors a person can act on (413, UTF-8, JSON)."""
    too_large = APIError(
        413,
        f"The request body is larger than {limit} bytes; raise the limit with --max-body-mb.",
        code="request_too_large",
    )
    length = request.headers.get("content-length", "")
    if length.isdigit() and int(length) > limit:
        raise too_large
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise too_large
        chunks.append(chunk)
    raw = b"".join(chunks)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise bad_request(f"The request body is not valid UTF-8 (bad byte at offset {exc.start}).") from None
    if not text.strip():
        raise bad_request("The request body is empty: send a JSON object.")
    try:
        body = json.loads(text, parse_constant=_reject_constant)
    except json.JSONDecodeError as exc:
        raise bad_request(
            f"The request body is not valid JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})."
        ) from None
    except ValueError as exc:
        raise bad_request(f"The request body is not valid JSON: {exc}.") from None
    except RecursionError:
        raise bad_request("The request body is nested too deeply to parse.") from None
    if _SURROGATE_ESCAPE.search(text):
        where = _unpaired_surrogate(body)
        if where is not None:
            where = where.encode("utf-8", "backslashreplace").decode("utf-8")  # a key may hold it too
            raise bad_request(
                f"Invalid value for '{where}': the string contains an unpaired UTF-16 surrogate escape "
                "(\\ud800-\\udfff without its pair), which is not valid Unicode text.",
                param=where,
            )
    return body


def sampling_from(req: _SamplingFields, max_tokens: int | None) -> SamplingParams:
    """SamplingParams from the request; unset fields keep the engine's defaults."""
    params = SamplingParams(max_tokens=max_tokens, stop=stop_list(req.stop), seed=req.seed)
    for name in ("temperature", "top_p", "top_k", "min_p", "repeat_penalty", "presence_penalty", "frequency_penalty"):
        value = getattr(req, name)
        if value is not None:
            setattr(params, name, value)
    return params


# variables the server itself passes to the chat template
RESERVED_TEMPLATE_KWARGS = ("messages", "tools", "add_generation_prompt")


def template_kwargs_from(req: ChatCompletionRequest) -> dict[str, Any]:
    """`chat_template_kwargs` as render variables; the ones the server sets are refused."""
    kwargs = dict(req.chat_template_kwargs or {})
    for name in RESERVED_TEMPLATE_KWARGS:
        if name in kwargs:
            raise bad_request(
                f"Invalid value for 'chat_template_kwargs': {name!r} is set by the server "
                f"(use the request's own fields); remove it.",
                param=f"chat_template_kwargs.{name}",
            )
    return kwargs


def context_error(exc: ContextLengthExceeded, param: str) -> APIError:
    return APIError(
        400,
        f"This model's maximum context length is {exc.n_ctx} tokens, but the prompt has "
        f"{exc.prompt_tokens} tokens (at least one token must be left for the reply). "
        "Shorten the conversation, or restart the server with a larger --n-ctx.",
        param=param,
        code="context_length_exceeded",
    )


def queue_error(exc: QueueFull) -> APIError:
    retry = max(1, math.ceil(getattr(exc, "retry_after", 1.0) or 1.0))
    return APIError(
        429,
        f"The server is busy (its request queue is full); retry in about {retry} s.",
        type="rate_limit_error",
        code="rate_limit_exceeded",
        headers={"Retry-After": str(retry)},
    )


def shutting_down_error() -> APIError:
    return APIError(503, "The server is shutting down; retry on another instance or after restart.",
                    type="server_error", code="shutting_down")


def generation_error(exc: BaseException, param: str) -> APIError:
    """Errors the engine reports for a request; anything else is a server error."""
    if isinstance(exc, ContextLengthExceeded):
        return context_error(exc, param)
    if isinstance(exc, GrammarError):
        return bad_request(f"Could not build a grammar for this request: {exc}", param=param, code="invalid_grammar")
    if isinstance(exc, ChatRequestError):
        return bad_request(exc.message, param=exc.param, code=exc.code)
    log.error("generation failed", exc_info=exc)
    return server_error()


Handler = Callable[[Request], Awaitable[Response]]


def json_errors(handler: Handler) -> Handler:
    """Every error becomes an OpenAI error body; unexpected ones are logged, not shown."""

    async def wrapped(request: Request) -> Response:
        try:
            return await handler(request)
        except APIError as exc:
            return error_response(exc)
        except Exception:  # noqa: BLE001 - the catch-all: never a traceback to the client
            log.exception("unhandled error on %s %s", request.method, request.url.path)
            return error_response(server_error())

    return wrapped


async def _cancel_on_disconnect(request: Request, cancel: Callable[[], None]) -> None:
    """Wait for the client to go away (non-streaming), then cancel its generation."""
    while True:
        message = await request.receive()
        if message["type"] == "http.disconnect":
            cancel()
            return


def _sse(data: dict[str, Any] | str) -> dict[str, str]:
    return {"data": data if isinstance(data, str) else json.dumps(data, ensure_ascii=False)}


# ---------------------------------------------------------------- the app


def create_app(runtime: ModelRuntime, settings: ServerSettings | None = None) -> Starlette:
    """The ASGI app serving one runtime."""
    settings = settings or ServerSettings()

    def check_model(name: str | None) -> None:
        if settings.strict_model_name and name is not None and not runtime.knows_model_name(name):
            raise APIError(
                404,
                f"The model {name!r} does not exist: this server serves {runtime.name!r}.",
                param="model",
                code="model_not_found",
            )

    def check_running() -> None:
        if runtime.closed:
            raise shutting_down_error()

    def cut_by_shutdown(finish_reason: str | None) -> bool:
        """A generation cancelled because the server stops: its answer is not whole,
        so the client gets a 503 (or an error event), never an empty or cut 'stop'."""
        return finish_reason == "cancelled" and runtime.closed

    def record_usage(request: Request, stats: Any) -> None:
        request.scope.setdefault(LOG_KEY, {}).update(
            prompt_tokens=stats.prompt_tokens, completion_tokens=stats.completion_tokens
        )

    async def health(request: Request) -> Response:
        return JSONResponse({"status": "ok", "model": runtime.name, "queue": runtime.scheduler.queue_depth()})

    async def models(request: Request) -> Response:
        meta = {
            "n_ctx": runtime.n_ctx,
            "dialect": runtime.dialect.name,
            "file": runtime.model_path.name,
        }
        return JSONResponse({"object": "list", "data": [model_card(runtime.name, runtime.created, {"meta": meta})]})

    async def chat_completions(request: Request) -> Response:
        body = await read_json(request, settings.max_body_bytes)
        req = parse_body(ChatCompletionRequest, body)
        check_chat_request(req)
        check_model(req.model)
        tools, choice = resolve_tools(req)
        options = ChatOptions(
            tools=tools,
            tool_choice=choice,
            parallel_tool_calls=True if req.parallel_tool_calls is None else req.parallel_tool_calls,
            response_format=response_format_dict(req),
            sampling=sampling_from(req, req.max_completion_tokens or req.max_tokens),
            template_kwargs=template_kwargs_from(req),
            stream=req.stream,
        )
        messages = chat_messages(req)
        check_running()
        try:
            run = await run_in_threadpool(start_chat, runtime, messages, options)
        except ChatRequestError as exc:
            raise bad_request(exc.message, param=exc.param, code=exc.code) from None
        except QueueFull as exc:
            raise queue_error(exc) from None

        items = run.__aiter__()
        if req.stream:
            include_usage = bool(req.stream_options and req.stream_options.include_usage)
            return await _stream_chat(request, run, items, include_usage)
        return await _complete_chat(request, run, items)

    async def _complete_chat(request: Request, run: Any, items: AsyncIterator[Any]) -> Response:
        watcher = asyncio.create_task(_cancel_on_disconnect(request, run.cancel))
        acc = MessageAccumulator()
        finish: Finish | None = None
        try:
            async for item in items:
                if isinstance(item, Finish):
                    finish = item
                else:
                    acc.add(item)
        except Exception as exc:  # noqa: BLE001 - mapped to a client error or a logged 500
            raise generation_error(exc, "messages") from None
        finally:
            watcher.cancel()
            run.cancel()
        assert finish is not None
        if cut_by_shutdown(finish.finish_reason):
            raise shutting_down_error()
        record_usage(request, finish.stats)
        body = chat_completion(
            random_id("chatcmpl-"), runtime.name, int(time.time()), acc.message(),
            openai_finish_reason(finish.finish_reason), finish.stats,
        )
        return JSONResponse(body)

    async def _stream_chat(request: Request, run: Any, items: AsyncIterator[Any], include_usage: bool) -> Response:
        # The first item decides between an HTTP error and a stream (e.g. the context is too small).
        # Until it comes the request may wait in the queue: a client leaving meanwhile cancels it.
        watcher = asyncio.create_task(_cancel_on_disconnect(request, run.cancel))
        try:
            first = await items.__anext__()
        except Exception as exc:  # noqa: BLE001
            run.cancel()
            raise generation_error(exc, "messages") from None
        finally:
            watcher.cancel()
        if isinstance(first, Finish) and cut_by_shutdown(first.finish_reason):
            raise shutting_down_error()
        writer = ChunkWriter(runtime.name, include_usage)

        async def events() -> AsyncIterator[dict[str, str]]:
            try:
                yield _sse(writer.first())
                item = first
                while True:
                    if isinstance(item, Finish):
                        if cut_by_shutdown(item.finish_reason):
                            yield _sse(shutting_down_error().body())  # no [DONE]: the answer was cut
                            return
                        record_usage(request, item.stats)
                        yield _sse(writer.finish(item.finish_reason))
                        if include_usage:
                            yield _sse(writer.usage(item.stats))
                        break
                    chunk = writer.event(item)
                    if chunk is not None:
                        yield _sse(chunk)
                    try:
                        item = await items.__anext__()
                    except StopAsyncIteration:  # cannot happen: a run always ends with a Finish
                        break
                yield _sse("[DONE]")
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - headers are sent: report in the stream
                err = generation_error(exc, "messages")
                yield _sse(err.body())
            finally:
                run.cancel()

        return EventSourceResponse(events(), ping=15, shutdown_grace_period=SHUTDOWN_GRACE_S)

    async def completions(request: Request) -> Response:
        body = await read_json(request, settings.max_body_bytes)
        req = parse_body(CompletionRequest, body)
        check_completion_request(req)
        check_model(req.model)
        prompt = req.prompt if isinstance(req.prompt, str) else req.prompt[0]
        if not prompt:
            raise bad_request("Invalid value for 'prompt': the prompt is empty; send some text.", param="prompt")
        sampling = sampling_from(req, req.max_tokens or DEFAULT_COMPLETION_MAX_TOKENS)
        check_running()
        try:
            handle = start_completion(runtime, prompt, sampling)
        except QueueFull as exc:
            raise queue_error(exc) from None
        rid, created = random_id("cmpl-"), int(time.time())
        pieces = handle.__aiter__()
        if req.stream:
            include_usage = bool(req.stream_options and req.stream_options.include_usage)
            return await _stream_completion(request, handle, pieces, rid, created, include_usage)
        watcher = asyncio.create_task(_cancel_on_disconnect(request, handle.cancel))
        try:
            text = "".join([piece async for piece in pieces])
        except Exception as exc:  # noqa: BLE001
            raise generation_error(exc, "prompt") from None
        finally:
            watcher.cancel()
            handle.cancel()
        if cut_by_shutdown(handle.stats.finish_reason):
            raise shutting_down_error()
        record_usage(request, handle.stats)
        return JSONResponse(text_completion(
            rid, runtime.name, created, text, openai_finish_reason(handle.stats.finish_reason), handle.stats
        ))

    async def _stream_completion(
        request: Request, handle: Any, pieces: AsyncIterator[str], rid: str, created: int, include_usage: bool
    ) -> Response:
        watcher = asyncio.create_task(_cancel_on_disconnect(request, handle.cancel))  # see _stream_chat
        try:
            first: str | None = await pieces.__anext__()
        except StopAsyncIteration:
            first = None
        except Exception as exc:  # noqa: BLE001
            handle.cancel()
            raise generation_error(exc, "prompt") from None
        finally:
            watcher.cancel()
        if first is None and cut_by_shutdown(handle.stats.finish_reason):
            raise shutting_down_error()

        async def events() -> AsyncIterator[dict[str, str]]:
            try:
                if first is not None:
                    yield _sse(text_completion_chunk(rid, runtime.name, created, first, None))
                    async for piece in pieces:
                        yield _sse(text_completion_chunk(rid, runtime.name, created, piece, None))
                stats = handle.stats
                if cut_by_shutdown(stats.finish_reason):
                    yield _sse(shutting_down_error().body())  # no [DONE]: the answer was cut
                    return
                record_usage(request, stats)
                yield _sse(text_completion_chunk(
                    rid, runtime.name, created, "", openai_finish_reason(stats.finish_reason)
                ))
                if include_usage:
                    yield _sse({"id": rid, "object": "text_completion", "created": created,
                                "model": runtime.name, "choices": [], "usage": usage_dict(stats)})
                yield _sse("[DONE]")
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001
                yield _sse(generation_error(exc, "prompt").body())
            finally:
                handle.cancel()

        return EventSourceResponse(events(), ping=15, shutdown_grace_period=SHUTDOWN_GRACE_S)

    async def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        if exc.status_code == 404:
            message = f"Unknown route: {request.method} {request.url.path} (see /v1/chat/completions, /v1/completions, /v1/models, /health)."
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

    routes = [
        Route("/health", json_errors(health), methods=["GET"]),
        Route("/v1/models", json_errors(models), methods=["GET"]),
        Route("/v1/chat/completions", json_errors(chat_completions), methods=["POST"]),
        Route("/v1/completions", json_errors(completions), methods=["POST"]),
    ]
    app = Starlette(
        routes=routes,
        middleware=[Middleware(AccessAndAuth, api_key=settings.api_key)],
        exception_handlers={HTTPException: http_error},
    )
    app.state.runtime = runtime
    return app
