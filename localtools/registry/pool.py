"""Several served models behind one server: lazy loading, leases, idle and LRU unloading.

A `ModelPool` holds one `Slot` per served name. Nothing loads at start: the first
request for a name loads it in a worker thread (the event loop keeps serving the
other models meanwhile), and every request arriving during that load waits for the
same load. A request holds a `Lease` on its model until its response is sent, so a
model with requests in flight is never unloaded: when `max_loaded` would be
exceeded, the least recently used idle model is unloaded; when every loaded model
is busy, the least recently used one is *drained* (it takes no new requests until
its running ones end, then makes room) so a waiting model cannot starve.

All bookkeeping runs on the event loop (no locks: state changes between awaits),
and waiters sleep on a broadcast event that every change replaces.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import anyio.to_thread

log = logging.getLogger("localtools.registry")

UNLOADED, LOADING, LOADED, UNLOADING, FAILED = "unloaded", "loading", "loaded", "unloading", "failed"
# a failed load is reported as it was for this long, then the next request tries again
FAILED_RETRY_S = 10.0


class UnknownModel(LookupError):
    """A request named a model this server does not serve."""

    def __init__(self, name: str, served: list[str]) -> None:
        super().__init__(name)
        self.name = name
        self.served = served


class ModelLoadFailed(RuntimeError):
    """The named model could not be loaded; `reason` says why (missing file, bad template...)."""

    def __init__(self, name: str, reason: str) -> None:
        super().__init__(f"{name}: {reason}")
        self.name = name
        self.reason = reason


@dataclass(frozen=True)
class ServedModel:
    """What one served name stands for, before anything is loaded.

    `load` is blocking (it runs in a worker thread) and returns a runtime: anything
    with `name`, `close()` and what the adapters use (`ModelRuntime` for the
    in-process engine; a remote engine's runtime can be another kind). `source` is
    what the user gave (a path, a catalog name, a URL), shown in listings."""

    name: str
    source: str
    load: Callable[[], Any]
    kind: str = "local"
    aliases: frozenset[str] = frozenset()
    estimate: Callable[[], int] | None = None  # bytes it will take loaded (registry/memory.py)


def close_runtime(runtime: Any) -> None:
    """Stop the runtime's worker, then free its engine (weights and context)."""
    runtime.close()
    engine_close = getattr(getattr(runtime, "engine", None), "close", None)
    if callable(engine_close):
        engine_close()


@dataclass
class Slot:
    """One served model's state; changed only on the event loop."""

    spec: ServedModel
    state: str = UNLOADED
    runtime: Any = None
    error: str | None = None
    failed_at: float = 0.0
    in_flight: int = 0
    last_used: float = 0.0
    draining: bool = False
    loads: int = 0
    memory: int | None = None  # the estimate, once made
    unloads: dict[str, int] = field(default_factory=lambda: {"idle": 0, "lru": 0})
    waiters: list[asyncio.Future[Any]] = field(default_factory=list)

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def holds_memory(self) -> bool:
        return self.state in (LOADING, LOADED, UNLOADING)


class Lease:
    """One request's hold on a loaded model; `release()` is idempotent."""

    def __init__(self, pool: ModelPool, slot: Slot) -> None:
        self._pool = pool
        self.slot = slot
        self.runtime = slot.runtime
        self._released = False

    def release(self) -> None:
        if not self._released:
            self._released = True
            self._pool._release(self.slot)


class ModelPool:
    """The served models; `acquire(name)` is the one way a request gets a runtime."""

    def __init__(
        self,
        models: list[ServedModel],
        *,
        max_loaded: int | None = None,
        idle_unload_s: float | None = None,
        max_memory: int | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not models:
            raise ValueError("a model pool needs at least one model")
        self.slots: dict[str, Slot] = {}
        for spec in models:
            if spec.name in self.slots:
                raise ValueError(f"two served models are both named {spec.name!r}")
            self.slots[spec.name] = Slot(spec)
        self._by_alias = _unambiguous_aliases(list(self.slots.values()))
        self.max_loaded = max_loaded if max_loaded and max_loaded > 0 else None
        self.idle_unload_s = idle_unload_s if idle_unload_s and idle_unload_s > 0 else None
        self.max_memory = max_memory if max_memory and max_memory > 0 else None
        self._clock = clock
        self._changed = asyncio.Event()
        self._wanting_room = 0
        self._tasks: set[asyncio.Task[None]] = set()
        self._reaper: asyncio.Task[None] | None = None
        self.closed = False

    # ---- lookup ---------------------------------------------------------

    @property
    def default(self) -> Slot:
        """The first model: it serves requests that name no model."""
        return next(iter(self.slots.values()))

    def find(self, name: str | None) -> Slot:
        """The slot a request's `model` names (served name, then an alias); the
        first model when it names none. Raises UnknownModel."""
        if not name:
            return self.default
        slot = self.slots.get(name) or self._by_alias.get(name)
        if slot is None:
            raise UnknownModel(name, list(self.slots))
        return slot

    # ---- acquire / release ------------------------------------------------

    async def acquire(self, name: str | None) -> Lease:
        """A lease on the named model, loading it (and making room) first when needed.
        Raises UnknownModel, ModelLoadFailed, or RuntimeError once the pool is closed."""
        slot = self.find(name)
        self._start_reaper()
        while True:
            if self.closed:
                raise RuntimeError("the server is shutting down")
            if slot.state == LOADED and (not slot.draining or self._wanting_room == 0):
                slot.draining = False
                return self._admit(slot)
            if slot.state == FAILED:
                if self._clock() - slot.failed_at < FAILED_RETRY_S:
                    raise ModelLoadFailed(slot.name, slot.error or "unknown error")
                slot.state = UNLOADED
            if slot.state == UNLOADED:
                await self._measure(slot)
                if not self._has_room(slot):
                    await self._wait_for_room()
                    continue
                self._begin_load(slot)
            if slot.state == LOADING:
                return await self._await_load(slot)
            await self._wait()  # unloading, or draining for another model

    def _admit(self, slot: Slot) -> Lease:
        slot.in_flight += 1
        slot.last_used = self._clock()
        return Lease(self, slot)

    async def _await_load(self, slot: Slot) -> Lease:
        """Wait for the slot's load; the loader admits every waiter at once, so a
        freshly loaded model serves the requests that waited for it before anything
        can unload it again."""
        waiter: asyncio.Future[Lease] = asyncio.get_running_loop().create_future()
        slot.waiters.append(waiter)
        try:
            return await waiter
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled() and waiter.exception() is None:
                waiter.result().release()  # admitted just as the client left
            raise

    def _release(self, slot: Slot) -> None:
        slot.in_flight -= 1
        slot.last_used = self._clock()
        self._notify()

    # ---- room (max_loaded) ----------------------------------------------

    async def _measure(self, slot: Slot) -> None:
        """Estimate the slot's memory once (with a budget); refuse a model that alone
        exceeds it (ModelLoadFailed: the client gets a 503 saying so)."""
        if self.max_memory is None:
            return
        if slot.memory is None:
            estimate = slot.spec.estimate
            slot.memory = await anyio.to_thread.run_sync(estimate) if estimate is not None else 0
        if slot.memory > self.max_memory:
            from localtools.registry.memory import format_size

            raise ModelLoadFailed(slot.name, f"it needs about {format_size(slot.memory)} (file and KV cache), "
                                             f"more than --max-memory {format_size(self.max_memory)}")

    def _has_room(self, slot: Slot) -> bool:
        held = [s for s in self.slots.values() if s.holds_memory]
        if self.max_loaded is not None and len(held) >= self.max_loaded:
            return False
        if self.max_memory is not None and held:
            return sum(s.memory or 0 for s in held) + (slot.memory or 0) <= self.max_memory
        return True

    async def _wait_for_room(self) -> None:
        """Unload the least recently used idle model, or drain the least recently
        used busy one when all are busy, then wait for the next change."""
        loaded = sorted((s for s in self.slots.values() if s.state == LOADED), key=lambda s: s.last_used)
        idle = [s for s in loaded if s.in_flight == 0]
        if idle:
            self._begin_unload(idle[0], "lru")
        elif loaded and not any(s.draining or s.state == UNLOADING for s in self.slots.values()):
            loaded[0].draining = True
            log.info("draining %s to make room (--max-loaded / --max-memory)", loaded[0].name)
        self._wanting_room += 1
        try:
            await self._wait()
        finally:
            self._wanting_room -= 1
            self._notify()  # a drained model may take requests again

    # ---- load / unload (tasks the pool owns: a client leaving cancels neither) ----

    def _begin_load(self, slot: Slot) -> None:
        slot.state, slot.error = LOADING, None  # before any await: one load per slot
        self._spawn(self._load(slot))

    async def _load(self, slot: Slot) -> None:
        started = self._clock()
        try:
            runtime = await anyio.to_thread.run_sync(slot.spec.load)
        except Exception as exc:  # noqa: BLE001 - reported to the requests for this model
            slot.state, slot.error, slot.failed_at = FAILED, _reason(exc), self._clock()
            log.error("cannot load model %s (%s): %s", slot.name, slot.spec.source, slot.error)
            self._answer_waiters(slot, ModelLoadFailed(slot.name, slot.error))
        else:
            if self.closed:
                await anyio.to_thread.run_sync(close_runtime, runtime)
                slot.state = UNLOADED
                self._answer_waiters(slot, RuntimeError("the server is shutting down"))
            else:
                slot.runtime, slot.state, slot.loads = runtime, LOADED, slot.loads + 1
                log.info("loaded model %s in %.1fs", slot.name, self._clock() - started)
                self._answer_waiters(slot, None)
        finally:
            self._notify()

    def _answer_waiters(self, slot: Slot, error: BaseException | None) -> None:
        waiters, slot.waiters = slot.waiters, []
        for waiter in waiters:
            if waiter.done():
                continue
            if error is None:
                waiter.set_result(self._admit(slot))
            else:
                waiter.set_exception(error)

    def _begin_unload(self, slot: Slot, why: str) -> None:
        if slot.state != LOADED or slot.in_flight:
            return
        runtime, slot.runtime = slot.runtime, None
        slot.state, slot.draining = UNLOADING, False
        slot.unloads[why] = slot.unloads.get(why, 0) + 1
        self._spawn(self._unload(slot, runtime, why))

    async def _unload(self, slot: Slot, runtime: Any, why: str) -> None:
        try:
            await anyio.to_thread.run_sync(close_runtime, runtime)
        except Exception:  # noqa: BLE001 - the model is gone either way
            log.exception("error while unloading %s", slot.name)
        finally:
            slot.state = UNLOADED
            log.info("unloaded model %s (%s)", slot.name, why)
            self._notify()

    def _start_reaper(self) -> None:
        if self.idle_unload_s is not None and self._reaper is None and not self.closed:
            self._reaper = asyncio.get_running_loop().create_task(self._reap())

    async def _reap(self) -> None:
        """Unload models idle for `idle_unload_s` (checked a few times per period)."""
        assert self.idle_unload_s is not None
        period = min(max(self.idle_unload_s / 4, 0.05), 5.0)
        while not self.closed:
            await asyncio.sleep(period)
            now = self._clock()
            for slot in self.slots.values():
                if slot.state == LOADED and slot.in_flight == 0 and now - slot.last_used >= self.idle_unload_s:
                    self._begin_unload(slot, "idle")

    # ---- plumbing ---------------------------------------------------------

    def _spawn(self, work: Any) -> None:
        task = asyncio.get_running_loop().create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _notify(self) -> None:
        self._changed.set()
        self._changed = asyncio.Event()

    async def _wait(self) -> None:
        await self._changed.wait()

    def close(self) -> None:
        """Stop every loaded model (shutdown; blocking, so call it from a thread)."""
        self.closed = True
        for slot in self.slots.values():
            if slot.runtime is not None:
                runtime, slot.runtime, slot.state = slot.runtime, None, UNLOADED
                try:
                    runtime.close()
                except Exception:  # noqa: BLE001 - shutting down: keep closing the others
                    log.exception("error while closing %s", slot.name)

    def status(self) -> list[dict[str, Any]]:
        """Each served model's state, for /v1/models, /api/tags and `localtools ps`."""
        now = self._clock()
        rows = []
        for slot in self.slots.values():
            row: dict[str, Any] = {
                "name": slot.name, "kind": slot.spec.kind, "source": slot.spec.source, "state": slot.state,
                "in_flight": slot.in_flight, "loads": slot.loads, "unloads": dict(slot.unloads),
                "idle_s": round(now - slot.last_used, 1) if slot.state == LOADED and not slot.in_flight else None,
            }
            if slot.memory is not None:
                row["memory_estimate"] = slot.memory
            if slot.error is not None:
                row["error"] = slot.error
            rows.append(row)
        return rows


def _unambiguous_aliases(slots: list[Slot]) -> dict[str, Slot]:
    """Alias -> slot, leaving out aliases two models share (the same file served twice)
    and served names (a served name always means its own model)."""
    claims: dict[str, list[Slot]] = {}
    for slot in slots:
        for alias in slot.spec.aliases:
            claims.setdefault(alias, []).append(slot)
    names = {slot.name for slot in slots}
    return {alias: owners[0] for alias, owners in claims.items() if len(owners) == 1 and alias not in names}


def _reason(exc: BaseException) -> str:
    text = str(exc).strip()
    return text or type(exc).__name__
