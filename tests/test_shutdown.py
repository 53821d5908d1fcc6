"""Ctrl-C (SIGINT) and SIGTERM: in-flight and queued requests are cancelled and told
so, the process exits 0 without a traceback, and it stops at once rather than
finishing long generations. (tests/test_server.py has the basic SIGTERM stream test.)

A request cut by shutdown must not look like a finished answer: a waiting or running
non-streamed request gets HTTP 503 `shutting_down`; an open stream ends with an error
event of that code and no `[DONE]`.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any, Iterator

import httpx
import pytest

from tests.live_server import _wait_ready, stop_server

pytestmark = pytest.mark.e2e

ENDLESS = [{"role": "user", "content": "Continue this sequence forever without stopping: 1, 2, 3, 4, 5,"}]
LONG = 1500  # tokens: over a minute of generation here


@pytest.fixture
def server(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[str], str, Path]]:
    """`localtools serve` with its log in a file the test can read afterwards."""
    log = tmp_path / "server.log"
    cmd = [sys.executable, "-m", "localtools", "serve", "--host", "127.0.0.1", "--port", "0", "--n-ctx", "1024"]
    with open(log, "w") as err:
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=err, text=True,
                                env={**os.environ, "PYTHONUNBUFFERED": "1"})
    try:
        url = _wait_ready(proc, 120, log)
        yield proc, url, log
    finally:
        stop_server(proc)


def test_sigint_when_idle_exits_0(server: tuple[subprocess.Popen[str], str, Path]) -> None:
    proc, url, log = server
    assert httpx.get(f"{url}/health").status_code == 200
    proc.send_signal(signal.SIGINT)
    assert proc.wait(timeout=20) == 0
    assert "Traceback" not in log.read_text()
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{url}/health", timeout=2)


def _post_whole(url: str, out: dict[str, Any], key: str) -> None:
    body = {"messages": ENDLESS, "max_tokens": LONG, "temperature": 0}
    try:
        response = httpx.post(f"{url}/v1/chat/completions", json=body, timeout=120)
        out[key] = (response.status_code, response.json())
    except httpx.HTTPError as exc:  # recorded; the assertions below say what was expected
        out[key] = (type(exc).__name__, None)


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_signal_cancels_running_and_queued_requests(server: tuple[subprocess.Popen[str], str, Path],
                                                    sig: signal.Signals) -> None:
    proc, url, log = server
    results: dict[str, Any] = {}
    waiting = [threading.Thread(target=_post_whole, args=(url, results, f"queued-{i}")) for i in range(2)]
    data: list[str] = []
    body = {"messages": ENDLESS, "max_tokens": LONG, "temperature": 0, "stream": True}
    with httpx.stream("POST", f"{url}/v1/chat/completions", json=body, timeout=60) as response:
        assert response.status_code == 200
        for line in response.iter_lines():
            if not line.startswith("data:"):
                continue
            data.append(line[5:].strip())
            if len(data) == 3:  # streaming for sure: queue two more, then stop the server
                for t in waiting:
                    t.start()
                deadline = time.monotonic() + 10
                while httpx.get(f"{url}/health").json()["queue"] < 2 and time.monotonic() < deadline:
                    time.sleep(0.05)
                proc.send_signal(sig)
    for t in waiting:
        t.join(timeout=60)

    # exiting this soon means the 1500-token generations were cancelled, not finished
    assert proc.wait(timeout=30) == 0
    assert "Traceback" not in log.read_text()

    # the open stream was told it was cut: an error event, no finish_reason, no [DONE]
    assert data[-1] != "[DONE]" and len(data) < LONG
    last = json.loads(data[-1])
    assert last["error"]["code"] == "shutting_down" and last["error"]["type"] == "server_error"
    finishes = [c["choices"][0]["finish_reason"] for c in map(json.loads, data[:-1]) if c.get("choices")]
    assert not any(finishes)

    # the queued requests were answered 503, not an empty 'stop'
    for key in ("queued-0", "queued-1"):
        status, reply = results[key]
        assert status == 503, results
        assert reply["error"]["code"] == "shutting_down"
