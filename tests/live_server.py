"""Run `localtools serve` as a subprocess for end-to-end tests.

    with live_server(["--api-key", "k"]) as base_url:   # http://127.0.0.1:PORT
        ...

The server binds port 0 and announces the port it got, so parallel test runs
never race for a port. The server is stopped with SIGTERM (then killed if it
does not stop) and its log is shown when it fails to start.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Iterator, Sequence

import httpx

READY = re.compile(r"localtools serving .* on (http://\S+)/v1")
START_TIMEOUT_S = 120.0


class ServerFailed(RuntimeError):
    pass


@contextlib.contextmanager
def live_server(
    args: Sequence[str] = (),
    model: str | None = None,
    env: dict[str, str] | None = None,
    timeout: float = START_TIMEOUT_S,
) -> Iterator[str]:
    """Start `localtools serve [MODEL] ARGS` on a free 127.0.0.1 port; yield its base URL."""
    with server_process(args, model, env, timeout) as (_, base_url):
        yield base_url


@contextlib.contextmanager
def server_process(
    args: Sequence[str] = (),
    model: str | None = None,
    env: dict[str, str] | None = None,
    timeout: float = START_TIMEOUT_S,
) -> Iterator[tuple[subprocess.Popen[str], str]]:
    """Like live_server, but also yields the process (for signal and exit-code tests)."""
    cmd = [sys.executable, "-m", "localtools", "serve"]
    if model is not None:
        cmd.append(model)
    cmd += ["--host", "127.0.0.1", "--port", "0", *args]
    log_file = tempfile.NamedTemporaryFile(prefix="localtools-server-", suffix=".log", delete=False)
    proc = subprocess.Popen(
        cmd,
        stdout=subprocess.PIPE,
        stderr=log_file,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})},
    )
    try:
        base_url = _wait_ready(proc, timeout, Path(log_file.name))
        yield proc, base_url
    finally:
        stop_server(proc)
        log_file.close()
        with contextlib.suppress(OSError):
            os.unlink(log_file.name)


def _wait_ready(proc: subprocess.Popen[str], timeout: float, log_path: Path) -> str:
    found: dict[str, str] = {}
    lines: list[str] = []

    def read_stdout() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:  # keeps draining so the pipe never fills
            lines.append(line)
            match = READY.search(line)
            if match and "url" not in found:
                found["url"] = match.group(1)

    threading.Thread(target=read_stdout, daemon=True).start()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            break
        url = found.get("url")
        if url is not None:
            try:
                if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                    return url
            except httpx.HTTPError:
                pass
        time.sleep(0.1)
    log = log_path.read_text(errors="replace")[-4000:]
    stop_server(proc)
    raise ServerFailed(
        f"localtools serve did not become ready (exit code {proc.returncode}).\n"
        f"stdout:\n{''.join(lines)}\nlog:\n{log}"
    )


def stop_server(proc: subprocess.Popen[str], grace: float = 15.0) -> int | None:
    """SIGTERM, wait, then SIGKILL: returns the exit code."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)
    return proc.returncode
