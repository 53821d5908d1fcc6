"""What every adapter asks of its host, and the checks they all make.

A host is anything with a `runtime` and `settings.strict_model_name`
(Starlette's `app.state` is one; so is `types.SimpleNamespace`), so adapters
run the same inside the HTTP server and without it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any, Protocol, TypeVar

import anyio.to_thread

from localtools.adapters.errors import AdapterError, shutting_down
from localtools.runtime import ModelRuntime

T = TypeVar("T")


class NameRules(Protocol):
    strict_model_name: bool  # refuse requests naming another model (404) instead of ignoring the name


class ServingState(Protocol):
    runtime: ModelRuntime
    settings: NameRules


def check_model(state: ServingState, name: str | None) -> None:
    """With strict model names, a request for a model this server does not serve is a 404."""
    runtime = state.runtime
    if state.settings.strict_model_name and name is not None and not runtime.knows_model_name(name):
        raise AdapterError(
            404,
            f"The model {name!r} does not exist: this server serves {runtime.name!r}.",
            param="model",
            code="model_not_found",
        )


def check_running(state: ServingState) -> None:
    if state.runtime.closed:
        raise shutting_down()


def cut_by_shutdown(state: ServingState, finish_reason: str | None) -> bool:
    """A generation cancelled because the server stops: its answer is not whole,
    so the client gets a 503 (or an error event), never an empty or cut 'stop'."""
    return finish_reason == "cancelled" and state.runtime.closed


async def start_in_thread(start: Callable[..., T], *args: Any, cancel: Callable[[T], None]) -> T:
    """`start(*args)` in a worker thread (rendering a prompt can take a while; the
    pool is anyio's, which Starlette uses too).

    If the caller is cancelled meanwhile (its client left), the thread still
    finishes: what it started is then cancelled at once, so it never holds
    the engine for nobody.
    """
    task = asyncio.ensure_future(anyio.to_thread.run_sync(start, *args))
    try:
        return await asyncio.shield(task)
    except asyncio.CancelledError:
        task.add_done_callback(lambda done: _cancel_started(done, cancel))
        raise


def _cancel_started(done: asyncio.Future[T], cancel: Callable[[T], None]) -> None:
    if not done.cancelled() and done.exception() is None:
        cancel(done.result())
