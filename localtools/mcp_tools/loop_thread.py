"""An asyncio event loop on its own thread, for synchronous callers of async code.

The MCP SDK is async and its connections (anyio task groups, subprocess
pipes) must live in one loop for their whole life, while the terminal chat
and `LocalModel` are synchronous. So the connections live on this thread's
loop and the caller waits on futures. A wait is interruptible: Ctrl-C in the
caller cancels the coroutine on the loop and re-raises KeyboardInterrupt.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
import time
from collections.abc import Coroutine
from typing import Any, TypeVar

__all__ = ["LoopThread"]

T = TypeVar("T")
_POLL = 0.1


class LoopThread:
    """One daemon thread running one event loop until stop()."""

    def __init__(self, name: str = "localtools-mcp") -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._main, name=name, daemon=True)
        self._thread.start()

    def _main(self) -> None:
        asyncio.set_event_loop(self.loop)
        try:
            self.loop.run_forever()
        finally:
            self.loop.close()

    @property
    def running(self) -> bool:
        return self._thread.is_alive() and not self.loop.is_closed()

    def submit(self, coro: Coroutine[Any, Any, T]) -> concurrent.futures.Future[T]:
        return asyncio.run_coroutine_threadsafe(coro, self.loop)

    def run(self, coro: Coroutine[Any, Any, T], timeout: float | None = None) -> T:
        """Run `coro` on the loop and wait for it. Ctrl-C (or a timeout) cancels it."""
        future = self.submit(coro)
        deadline = None if timeout is None else time.monotonic() + timeout
        try:
            # short waits: a signal that lands on another thread is still seen between them
            while True:
                step = _POLL if deadline is None else min(_POLL, max(0.0, deadline - time.monotonic()))
                try:
                    return future.result(step)
                except concurrent.futures.TimeoutError:
                    if deadline is not None and time.monotonic() >= deadline:
                        raise
        except BaseException:
            future.cancel()
            raise

    def wait_quietly(self, future: concurrent.futures.Future[Any], timeout: float) -> bool:
        """Wait up to `timeout` seconds for `future` even through Ctrl-C (for shutdown,
        which must finish or leave servers running); True if it completed."""
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return future.done()
            try:
                concurrent.futures.wait([future], timeout=remaining)
                return future.done()
            except KeyboardInterrupt:
                continue

    def stop(self, timeout: float = 5.0) -> None:
        """Stop the loop (pending tasks are abandoned: close what matters first)."""
        if self.loop.is_closed():
            return
        try:
            self.loop.call_soon_threadsafe(self.loop.stop)
        except RuntimeError:  # closed in between
            return
        if threading.current_thread() is not self._thread:
            self._thread.join(timeout)
