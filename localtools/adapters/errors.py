"""The one error every adapter raises: an HTTP status and what to tell the client.

It is deliberately not shaped like any API's error body: each route (OpenAI,
Responses, Anthropic Messages, Ollama) maps it into its own. Engine and
service failures are translated here once, so no front end can leak a
traceback or disagree with another on what status a failure deserves.
"""

from __future__ import annotations

import logging
import math

from localtools.backends import BackendUnavailable
from localtools.engine import ContextLengthExceeded, GrammarError
from localtools.scheduler import QueueFull
from localtools.service import ChatRequestError

log = logging.getLogger("localtools.server")


class AdapterError(Exception):
    """A request that failed: `status` (HTTP), a message a person can act on, the
    request field at fault (`param`, e.g. `messages[2].content`), a machine-readable
    `code`, and for 429 how many seconds to wait (`retry_after`)."""

    def __init__(
        self,
        status: int,
        message: str,
        param: str | None = None,
        code: str | None = None,
        retry_after: int | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.param = param
        self.code = code
        self.retry_after = retry_after


def bad_request(message: str, param: str | None = None, code: str | None = None) -> AdapterError:
    return AdapterError(400, message, param=param, code=code)


def server_error() -> AdapterError:
    return AdapterError(500, "The server had an error while processing your request (details are in the server log).")


def shutting_down() -> AdapterError:
    return AdapterError(503, "The server is shutting down; retry on another instance or after restart.",
                        code="shutting_down")


def queue_full(exc: QueueFull) -> AdapterError:
    retry = max(1, math.ceil(getattr(exc, "retry_after", 1.0) or 1.0))
    return AdapterError(429, f"The server is busy (its request queue is full); retry in about {retry} s.",
                        code="rate_limit_exceeded", retry_after=retry)


def context_too_long(exc: ContextLengthExceeded, param: str) -> AdapterError:
    return AdapterError(
        400,
        f"This model's maximum context length is {exc.n_ctx} tokens, but the prompt has "
        f"{exc.prompt_tokens} tokens (at least one token must be left for the reply). "
        "Shorten the conversation, or restart the server with a larger --n-ctx.",
        param=param,
        code="context_length_exceeded",
    )


def from_failure(exc: BaseException, param: str) -> AdapterError:
    """What a failure of starting or running a generation means for the client;
    anything not known to be the request's fault is logged and becomes a 500."""
    if isinstance(exc, AdapterError):
        return exc
    if isinstance(exc, ContextLengthExceeded):
        return context_too_long(exc, param)
    if isinstance(exc, GrammarError):
        return bad_request(f"Could not build a grammar for this request: {exc}", param=param, code="invalid_grammar")
    if isinstance(exc, ChatRequestError):
        return bad_request(exc.message, param=exc.param, code=exc.code)
    if isinstance(exc, QueueFull):
        return queue_full(exc)
    if isinstance(exc, BackendUnavailable):  # upstream engines down: the client may retry
        log.warning("%s", exc)
        return AdapterError(503, "The model's engine is unavailable (an upstream engine failed or none is up); "
                            "retry shortly. Details are in the server log.", code="engine_unavailable",
                            retry_after=max(1, math.ceil(exc.retry_after)))
    log.error("generation failed", exc_info=exc)
    return server_error()
