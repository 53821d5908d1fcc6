"""One model context, many requests: a FIFO queue in front of the engine's slots.

A llama context is not thread-safe, so one worker thread owns the engine. It admits
queued requests into free sequence slots (FIFO: nobody starves), steps every running
generation together (continuous batching: one token each per step) and delivers the
pieces. Callers get a `GenerationHandle` they can iterate from any thread or from
asyncio, and cancel; a cancelled generation leaves its slot at the next step.
"""

from __future__ import annotations

import asyncio
import collections
import concurrent.futures
import logging
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any, TypeVar

from localtools.engine import (
    ContextLengthExceeded,
    Engine,
    GenerationStats,
    GrammarError,
    SamplingParams,
)

log = logging.getLogger(__name__)

T = TypeVar("T")

_DONE = object()  # end-of-stream marker in a handle's piece queue
_EXPECTED_ERRORS = (ContextLengthExceeded, GrammarError, ValueError)


class QueueFull(Exception):
    """Too many requests are waiting; try again after `retry_after` seconds."""

    def __init__(self, depth: int, retry_after: float):
        self.depth = depth
        self.retry_after = retry_after
        super().__init__(f"the generation queue is full ({depth} waiting); retry in {retry_after:.0f}s")


class GenerationHandle:
    """A submitted generation: iterate it for text pieces, cancel it, read its stats.

    Meant for one consumer. Iteration ends when generation ends; an exception raised by
    the engine (ContextLengthExceeded, GrammarError, ...) is re-raised to the consumer.
    Abandoning an iteration early (break, client gone) cancels the generation.
    """

    def __init__(self, prompt: str | list[int], params: SamplingParams, scheduler: Scheduler | None = None):
        self.prompt = prompt
        self.params = params
        self.stats = GenerationStats()
        self.error: BaseException | None = None
        self.submitted_at = time.monotonic()
        self.started_at: float | None = None
        self._scheduler = scheduler
        self._cancel = threading.Event()
        self._done = threading.Event()
        self._lock = threading.Lock()
        self._ready = threading.Condition(self._lock)
        self._items: collections.deque[object] = collections.deque()
        self._async_waiter: tuple[asyncio.AbstractEventLoop, asyncio.Future[None]] | None = None

    # ---- consumer side ---------------------------------------------------

    def cancel(self) -> None:
        """Stop within a token or two; if still queued, it never runs."""
        self._cancel.set()
        if self._scheduler is not None:
            self._scheduler._drop_queued(self)

    @property
    def cancelled(self) -> bool:
        return self._cancel.is_set()

    @property
    def done(self) -> bool:
        return self._done.is_set()

    def wait(self, timeout: float | None = None) -> bool:
        """Block until generation has finished (True) or `timeout` passed (False)."""
        return self._done.wait(timeout)

    def __iter__(self) -> Iterator[str]:
        return self._iterate()

    def _iterate(self) -> Iterator[str]:
        finished = False
        try:
            while True:
                with self._ready:
                    while not self._items:
                        self._ready.wait()
                    item = self._items.popleft()
                if item is _DONE:
                    finished = True
                    if self.error is not None:
                        raise self.error
                    return
                yield item  # type: ignore[misc]
        finally:
            if not finished:
                self.cancel()

    def __aiter__(self) -> AsyncIterator[str]:
        return self._aiterate()

    async def _aiterate(self) -> AsyncIterator[str]:
        loop = asyncio.get_running_loop()
        finished = False
        try:
            while True:
                with self._lock:
                    if self._items:
                        item = self._items.popleft()
                        waiter = None
                    else:
                        item = None
                        waiter = loop.create_future()
                        self._async_waiter = (loop, waiter)
                if waiter is not None:
                    await waiter
                    continue
                if item is _DONE:
                    finished = True
                    if self.error is not None:
                        raise self.error
                    return
                yield item  # type: ignore[misc]
        finally:
            with self._lock:
                self._async_waiter = None
            if not finished:
                self.cancel()

    def text(self) -> str:
        """All generated text (blocks until the end; raises the engine's error)."""
        return "".join(self)

    # ---- producer side (worker thread) -------------------------------------

    def _put(self, item: object) -> None:
        with self._lock:
            self._items.append(item)
            self._ready.notify_all()
            waiter, self._async_waiter = self._async_waiter, None
        if waiter is not None:
            loop, fut = waiter
            try:
                loop.call_soon_threadsafe(_resolve, fut)
            except RuntimeError:  # the consumer's loop is closed
                pass

    def _finish(self, error: BaseException | None = None) -> None:
        if self._done.is_set():
            return
        self.error = error
        self._done.set()
        self._put(_DONE)


def _resolve(fut: asyncio.Future[None]) -> None:
    if not fut.done():
        fut.set_result(None)


class _Call:
    """A function to run on the worker thread with the engine."""

    def __init__(self, fn: Callable[[Engine], object]):
        self.fn = fn
        self.future: concurrent.futures.Future[object] = concurrent.futures.Future()


class _Rate:
    """Generated tokens per second over the last `window` seconds (for /metrics)."""

    def __init__(self, window: float = 10.0):
        self.window = window
        self._events: collections.deque[tuple[float, int]] = collections.deque()

    def add(self, n: int) -> None:
        if n > 0:
            self._events.append((time.monotonic(), n))

    def per_second(self) -> float:
        now = time.monotonic()
        events = self._events
        while events and events[0][0] < now - self.window:
            events.popleft()
        return sum(n for _, n in events) / self.window


class Scheduler:
    """Serves generations on one worker thread that owns the engine, `engine.n_parallel`
    at a time, the rest waiting FIFO.

    `call(fn)` runs small engine jobs (tokenize, count_tokens, metadata) on the same
    worker; they are served between steps of the running generations so they never wait
    for a long reply. Such functions must not start a generation themselves.
    """

    def __init__(self, engine: Engine, max_queue: int = 64):
        self.engine = engine
        self.max_queue = max_queue
        self.n_slots = max(1, int(getattr(engine, "n_parallel", 1)))
        self._lock = threading.Lock()
        self._wake = threading.Condition(self._lock)
        self._queue: collections.deque[GenerationHandle] = collections.deque()
        self._calls: collections.deque[_Call] = collections.deque()
        self._active: dict[GenerationHandle, Any] = {}  # handle -> its engine Generation
        self._closed = False
        self._avg_seconds = 5.0  # running estimate of one request's duration (for retry_after)
        self._rate = _Rate()
        self.requests_total = 0
        self._worker = threading.Thread(target=self._serve, name="localtools-engine", daemon=True)
        self._worker.start()

    # ---- public API --------------------------------------------------------

    def submit(self, prompt: str | list[int], params: SamplingParams) -> GenerationHandle:
        """Queue a generation; raises QueueFull when `max_queue` requests already wait."""
        with self._lock:
            if self._closed:
                raise RuntimeError("scheduler is closed")
            depth = len(self._queue)
            if depth >= self.max_queue:
                retry = min(60.0, max(1.0, self._avg_seconds * (depth + 1) / self.n_slots))
                raise QueueFull(depth, retry)
            handle = GenerationHandle(prompt, params, self)
            self._queue.append(handle)
            self.requests_total += 1
            self._wake.notify()
        return handle

    def queue_depth(self) -> int:
        """Requests waiting to start (the running ones not counted)."""
        with self._lock:
            return len(self._queue)

    @property
    def busy(self) -> bool:
        """Whether a generation is running now."""
        return bool(self._active)

    @property
    def slots_busy(self) -> int:
        """Sequence slots running a generation now."""
        return len(self._active)

    def stats(self) -> dict[str, float]:
        """Numbers for /health and /metrics."""
        with self._lock:
            depth = len(self._queue)
        counts = getattr(self.engine, "thread_counts", None)
        decode, batch = counts() if callable(counts) else (0, 0)
        return {
            "slots_total": self.n_slots,
            "slots_busy": len(self._active),
            "queue_depth": depth,
            "tokens_per_second": round(self._rate.per_second(), 3),
            "tokens_generated_total": int(getattr(self.engine, "tokens_generated", 0)),
            "prompt_tokens_reused_total": int(getattr(self.engine, "tokens_reused", 0)),
            "prompt_prefixes_copied_total": int(getattr(self.engine, "prefixes_copied", 0)),
            "decode_threads": decode,
            "batch_threads": batch,
            "requests_total": self.requests_total,
        }

    def call(self, fn: Callable[[Engine], T]) -> T:
        """Run fn(engine) on the worker thread and return its result (or raise its error)."""
        if threading.current_thread() is self._worker:
            return fn(self.engine)
        job = _Call(fn)
        with self._lock:
            if self._closed:
                raise RuntimeError("scheduler is closed")
            self._calls.append(job)
            self._wake.notify()
        return job.future.result()  # type: ignore[return-value]

    def close(self, cancel_running: bool = True, timeout: float | None = 30.0) -> None:
        """Stop accepting work, cancel what waits (and what runs), stop the worker."""
        with self._lock:
            self._closed = True
            waiting = list(self._queue)
            self._queue.clear()
            running = list(self._active)
            self._wake.notify_all()
        for handle in waiting:
            handle._cancel.set()
            handle.stats.finish_reason = "cancelled"
            handle._finish()
        if cancel_running:
            for handle in running:
                handle._cancel.set()
        if threading.current_thread() is not self._worker:
            self._worker.join(timeout)

    # ---- worker ------------------------------------------------------------

    def _drop_queued(self, handle: GenerationHandle) -> None:
        """A queued handle was cancelled: take it out and end its stream now."""
        with self._lock:
            try:
                self._queue.remove(handle)
            except ValueError:
                return  # running or finished: the worker sees the cancel flag
        handle.stats.finish_reason = "cancelled"
        handle._finish()

    def _serve(self) -> None:
        while True:
            with self._lock:
                while not self._queue and not self._calls and not self._active and not self._closed:
                    self._wake.wait()
                if self._closed and not self._active and not self._queue and not self._calls:
                    break
                admit: list[GenerationHandle] = []
                while self._queue and len(self._active) + len(admit) < self.n_slots:
                    admit.append(self._queue.popleft())
            self._run_calls()
            for handle in admit:
                self._start(handle)
            if self._active:
                self._step()
        self._run_calls()  # fail nothing silently: serve calls that raced with close

    def _run_calls(self) -> None:
        while True:
            with self._lock:
                if not self._calls:
                    return
                job = self._calls.popleft()
            if not job.future.set_running_or_notify_cancel():
                continue
            try:
                job.future.set_result(job.fn(self.engine))
            except BaseException as exc:  # delivered to the caller
                job.future.set_exception(exc)

    def _start(self, handle: GenerationHandle) -> None:
        """Put a handle's generation in a slot (or end it: cancelled, bad request)."""
        if handle.cancelled:
            handle.stats.finish_reason = "cancelled"
            handle._finish()
            return
        handle.started_at = time.monotonic()
        try:
            gen = self.engine.start(handle.prompt, handle.params, handle._cancel, handle.stats)
        except _EXPECTED_ERRORS as exc:
            handle._finish(exc)
            return
        except BaseException as exc:  # the worker must survive anything a request does
            log.exception("generation failed to start")
            handle._finish(exc)
            return
        with self._lock:
            self._active[handle] = gen
        self._deliver(handle, gen)

    def _step(self) -> None:
        """One engine step for every running generation, then hand out the pieces."""
        active = list(self._active.items())
        before = sum(gen.n_gen for _, gen in active)
        try:
            self.engine.step()
        except BaseException as exc:  # the worker must survive anything a request does
            log.exception("engine step failed")
            for _, gen in active:
                gen.error = exc
                gen.abort("error")
        self._rate.add(sum(gen.n_gen for _, gen in active) - before)
        for handle, gen in active:
            self._deliver(handle, gen)

    def _deliver(self, handle: GenerationHandle, gen: Any) -> None:
        for piece in gen.drain():
            handle._put(piece)
        if not gen.done:
            return
        self.engine.release(gen)
        with self._lock:
            self._active.pop(handle, None)
        if gen.error is not None and not isinstance(gen.error, _EXPECTED_ERRORS):
            log.error("generation failed: %s", gen.error)
        handle._finish(gen.error)
        took = time.monotonic() - (handle.started_at or time.monotonic())
        self._avg_seconds = 0.8 * self._avg_seconds + 0.2 * took
