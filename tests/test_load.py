"""Load against a live server: 8 concurrent clients x 25 requests (streamed and whole,
JSON and tool calls), then 20 clients dropping their streams mid-way.

Every answer must be well-formed and carry the value only its own request could get
(scripts/load_test.py forces it with a grammar), nothing may be lost, the dropped
generations must be cancelled (the server answers at once afterwards), and the
server's RSS must not grow much. The figures are printed (pytest -s shows them).
Takes about four minutes on two CPU cores.
"""

from __future__ import annotations

import importlib.util
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.live_server import server_process

pytestmark = pytest.mark.e2e

CLIENTS = 8
PER_CLIENT = 25
DISCONNECTS = 20
MAX_TOKENS = 24
RSS_GROWTH_LIMIT_MB = 150  # generous: a leak per request (200+ of them) would show far above this


def _load_script() -> Any:
    script = Path(__file__).resolve().parent.parent / "scripts" / "load_test.py"
    spec = importlib.util.spec_from_file_location("load_test", script)
    module = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
    sys.modules[spec.name] = module  # type: ignore[union-attr]  # dataclasses look their module up
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    return module


load_test = _load_script()


def test_concurrent_load_with_disconnects() -> None:
    with server_process(["--n-ctx", "2048"]) as (proc, url):
        report = load_test.run_load(url, CLIENTS, PER_CLIENT, DISCONNECTS, MAX_TOKENS, pid=proc.pid)
        print("\n" + "\n".join(report.lines()))

        assert report.errors == [], report.errors[:5]
        assert report.completed == report.requests == CLIENTS * PER_CLIENT
        assert set(report.by_kind) == set(load_test.KINDS)
        assert report.disconnect_errors == [] and report.disconnects == DISCONNECTS

        # the dropped streams asked for 2000 tokens each: had they kept running, this
        # request would wait behind them for many minutes
        health = httpx.get(f"{url}/health", timeout=10).json()
        assert health["status"] == "ok"
        body = {"messages": [{"role": "user", "content": "Hi"}], "max_tokens": 2, "temperature": 0}
        reply = httpx.post(f"{url}/v1/chat/completions", json=body, timeout=60).json()
        assert reply["usage"]["completion_tokens"] == 2
        assert httpx.get(f"{url}/health", timeout=10).json()["queue"] == 0

        assert report.rss_growth_kb is not None
        assert report.rss_growth_kb < RSS_GROWTH_LIMIT_MB * 1024, report.lines()
        assert proc.poll() is None  # still running


def test_streams_abandoned_while_queued_never_run() -> None:
    """Clients that give up on a stream before it starts (still queued behind another
    request) are taken out of the queue at once, not run later for nobody."""
    with server_process(["--n-ctx", "1024", "--parallel", "1"]) as (_, url):  # one slot: the rest queue
        running = {"messages": load_test.ENDLESS, "max_tokens": 300, "temperature": 0, "stream": True}
        with httpx.stream("POST", f"{url}/v1/chat/completions", json=running, timeout=120) as response:
            lines = response.iter_lines()
            next(line for line in lines if line.startswith("data:"))  # generating now

            def give_up(_: int) -> str:
                body = {**running, "max_tokens": 2000}
                try:
                    with httpx.stream("POST", f"{url}/v1/chat/completions", json=body, timeout=1.5):
                        return "answered"
                except httpx.TimeoutException:
                    return "gave up"  # leaving closes the connection

            with ThreadPoolExecutor(max_workers=10) as pool:
                outcomes = list(pool.map(give_up, range(10)))
            assert outcomes == ["gave up"] * 10
            deadline = time.monotonic() + 5
            while (queue := httpx.get(f"{url}/health").json()["queue"]) and time.monotonic() < deadline:
                time.sleep(0.1)
            assert queue == 0, "abandoned streams are still queued"
            done = [line for line in lines if line.startswith("data:")]
        assert done[-1] == "data: [DONE]"  # the running stream was not disturbed
