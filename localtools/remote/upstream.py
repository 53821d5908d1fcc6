"""The upstream engines of one model: what each is, whether it is up, how loaded it is.

Requests go to the least-busy healthy upstream (our own in-flight count per slot: we
are the only client in the intended set-up, and counting needs no extra round trip),
preferring one that served a prompt sharing a long prefix with this one, so its KV
cache is reused. An upstream that fails is taken out of rotation and probed again
after a back-off by the health thread; one that answers comes back.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from array import array
from collections import deque
from dataclasses import dataclass, field
from typing import Any

import httpx

log = logging.getLogger("localtools.remote")

LLAMA_SERVER = "llama-server"
VLLM = "vllm"
RECENT_PROMPTS = 8  # prompts remembered per upstream for prefix affinity
MIN_AFFINITY_TOKENS = 32  # a shared prefix shorter than this is not worth a busier upstream


@dataclass
class Upstream:
    """One engine process reachable over HTTP."""

    url: str
    kind: str | None = None  # LLAMA_SERVER | VLLM, once detected
    model: str | None = None  # the name vLLM serves the model under
    n_ctx: int | None = None  # context window per request (per slot for llama-server)
    slots: int = 1  # requests it runs at once (llama-server --parallel; vLLM: many)
    healthy: bool = False
    in_flight: int = 0
    failures: int = 0  # consecutive failures (for the back-off)
    retry_at: float = 0.0  # monotonic time before which it is not probed again
    last_error: str = ""
    busy_slots: dict[int, int] = field(default_factory=dict)  # llama-server slot id -> our requests on it
    # Our requests in flight that asked for any slot: llama-server chose theirs, and we learn
    # which only when they end, so while one runs no slot is known to be free. Asking for a
    # slot that is busy is not merely queued: llama-server 0.3.36's running request there
    # went on under the new request's grammar (a counting stream ended in the other
    # request's tool call, seen in tests/test_remote_e2e.py), so a slot is pinned only
    # when it is known to be free.
    unpinned: int = 0
    recent: deque[tuple[bytes, int]] = field(default_factory=lambda: deque(maxlen=RECENT_PROMPTS))

    @property
    def load(self) -> float:
        return self.in_flight / max(1, self.slots)


def token_bytes(tokens: list[int]) -> bytes:
    """Tokens as bytes, so a common prefix is one C-speed comparison."""
    return array("i", tokens).tobytes()


def shared_prefix(a: bytes, b: bytes) -> int:
    """Tokens two `token_bytes` share at the start."""
    return len(os.path.commonprefix([a, b])) // 4


def refused_key(r: httpx.Response) -> None:
    """Raise a readable error when the upstream refused our API key (or wants one)."""
    if r.status_code in (401, 403):
        raise httpx.HTTPStatusError(
            f"{r.request.url.scheme}://{r.request.url.netloc.decode()} refused the API key (HTTP {r.status_code}): "
            "give the upstream's key with --engine-api-key or LOCALTOOLS_ENGINE_API_KEY",
            request=r.request, response=r)


def probe(client: httpx.Client, up: Upstream) -> None:
    """Find out what `up` is and whether it serves now (raises httpx.HTTPError if not)."""
    if up.kind in (None, LLAMA_SERVER):
        r = client.get(up.url + "/props", timeout=5.0)
        refused_key(r)  # llama-server keeps /v1/models public: do not take it for vLLM
        if r.status_code == 200 and "default_generation_settings" in r.text:
            props = r.json()
            up.kind = LLAMA_SERVER
            up.n_ctx = int(props["default_generation_settings"].get("n_ctx") or 0) or None
            up.slots = int(props.get("total_slots") or 1)
            client.get(up.url + "/health", timeout=5.0).raise_for_status()  # 503 while loading
            return
        if up.kind == LLAMA_SERVER:
            r.raise_for_status()
    r = client.get(up.url + "/v1/models", timeout=5.0)
    refused_key(r)
    r.raise_for_status()
    models = r.json().get("data") or []
    if not models:
        raise httpx.HTTPError(f"{up.url}/v1/models lists no model")
    up.kind = VLLM
    up.model = str(models[0]["id"])
    up.n_ctx = int(models[0].get("max_model_len") or 0) or None
    up.slots = 64  # vLLM batches; its own scheduler queues the rest
    client.get(up.url + "/health", timeout=5.0).raise_for_status()


class UpstreamPool:
    """The upstreams of one model, with routing and a health-check thread."""

    def __init__(self, urls: list[str], client: httpx.Client, health_interval: float = 5.0):
        if not urls:
            raise ValueError("no upstream URL given")
        self.upstreams = [Upstream(url.rstrip("/")) for url in urls]
        self.client = client
        self.health_interval = health_interval
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # ---- health ----------------------------------------------------------

    def check(self, up: Upstream) -> bool:
        """Probe one upstream now; it joins or leaves the rotation accordingly."""
        try:
            probe(self.client, up)
        except (httpx.HTTPError, ValueError, KeyError) as exc:
            self.mark_failed(up, f"health check: {exc}")
            return False
        with self._lock:
            if not up.healthy:
                log.info("upstream %s (%s) is up", up.url, up.kind)
            up.healthy, up.failures, up.last_error = True, 0, ""
        return True

    def check_all(self) -> int:
        """Probe every upstream (start-up); returns how many are healthy."""
        return sum(self.check(up) for up in self.upstreams)

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._watch, name="localtools-upstreams", daemon=True)
            self._thread.start()

    def _watch(self) -> None:
        while not self._stop.wait(self.health_interval):
            now = time.monotonic()
            for up in self.upstreams:
                if up.healthy or now >= up.retry_at:
                    self.check(up)

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)

    def mark_failed(self, up: Upstream, why: str) -> None:
        """Out of rotation until a health check passes (back-off doubles, at most 30 s)."""
        with self._lock:
            if up.healthy:
                log.warning("upstream %s is down: %s", up.url, why)
            up.healthy = False
            up.failures += 1
            up.last_error = why
            up.retry_at = time.monotonic() + min(30.0, 0.5 * 2 ** min(up.failures, 6))

    # ---- routing ---------------------------------------------------------

    def acquire(self, prompt: bytes, exclude: set[str]) -> tuple[Upstream, int] | None:
        """The upstream for this prompt and the llama-server slot to ask for (-1: any),
        counted as busy until `release`; None when no healthy upstream is left."""
        with self._lock:
            live = [up for up in self.upstreams if up.healthy and up.url not in exclude]
            if not live:
                return None
            least = min(up.load for up in live)
            best, slot, best_shared = min(live, key=lambda up: up.load), -1, 0
            for up in live:
                if up.load > least + 1.0 / max(1, up.slots) + 1e-9:
                    continue
                for seen, seen_slot in up.recent:
                    n = shared_prefix(seen, prompt)
                    if n > best_shared and n >= MIN_AFFINITY_TOKENS:
                        best, best_shared = up, n
                        free = seen_slot >= 0 and not up.busy_slots.get(seen_slot) and not up.unpinned
                        slot = seen_slot if free else -1
            best.in_flight += 1
            if slot >= 0:
                best.busy_slots[slot] = best.busy_slots.get(slot, 0) + 1
            else:
                best.unpinned += 1
            return best, slot

    def release(self, up: Upstream, asked_slot: int, served_slot: int | None, prompt: bytes) -> None:
        """A request ended; remember which slot now holds its prompt (prefix affinity)."""
        with self._lock:
            up.in_flight = max(0, up.in_flight - 1)
            if asked_slot >= 0:
                left = up.busy_slots.get(asked_slot, 1) - 1
                if left > 0:
                    up.busy_slots[asked_slot] = left
                else:
                    up.busy_slots.pop(asked_slot, None)
            else:
                up.unpinned = max(0, up.unpinned - 1)
            if served_slot is None:  # no slots (vLLM): the prompt is just recent
                up.recent.append((prompt, -1))
            elif served_slot >= 0:  # that slot's cache now holds this prompt, not its last one
                kept = [(p, s) for p, s in up.recent if s != served_slot]
                up.recent.clear()
                up.recent.extend(kept)
                up.recent.append((prompt, served_slot))

    @property
    def in_flight(self) -> int:
        return sum(up.in_flight for up in self.upstreams)

    @property
    def capacity(self) -> int:
        return sum(up.slots for up in self.upstreams if up.healthy)

    def describe(self) -> list[dict[str, Any]]:
        """Each upstream's state (for logs and /health)."""
        with self._lock:
            return [{"url": up.url, "kind": up.kind, "healthy": up.healthy, "in_flight": up.in_flight,
                     "slots": up.slots, "n_ctx": up.n_ctx, "last_error": up.last_error or None}
                    for up in self.upstreams]
