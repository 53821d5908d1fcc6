"""Real MCP servers for the tests (tests/data/mcp_server.py, written with the `mcp` SDK):
stdio config entries, a streamable-HTTP server on a free 127.0.0.1 port, and
/proc checks that a server's process (and its process group) is gone."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

SERVER = Path(__file__).resolve().parent / "data" / "mcp_server.py"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def stdio_entry(name: str, tmp: Path, **extra_env: str) -> dict[str, Any]:
    env = {"MCP_TEST_PIDFILE": str(tmp / "pids"), "MCP_TEST_RECORD": str(tmp / "record.jsonl"), **extra_env}
    return {"command": sys.executable, "args": [str(SERVER), name], "env": env}


def server_pids(tmp: Path) -> list[int]:
    path = tmp / "pids"
    return [int(line) for line in path.read_text().split()] if path.exists() else []


def _stat(pid: int) -> list[str] | None:
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return text[text.rindex(")") + 2 :].split()  # state, ppid, pgrp, …


def alive(pid: int) -> bool:
    """Running, not a zombie waiting to be reaped."""
    fields = _stat(pid)
    return fields is not None and fields[0] != "Z"


def group_members(pgid: int) -> list[int]:
    """Live processes in process group `pgid` (a stdio server runs in its own session)."""
    out = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            fields = _stat(int(entry))
            if fields is not None and fields[0] != "Z" and int(fields[2]) == pgid:
                out.append(int(entry))
    return out


def children_of(pid: int) -> list[int]:
    out = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            fields = _stat(int(entry))
            if fields is not None and fields[0] != "Z" and int(fields[1]) == pid:
                out.append(int(entry))
    return out


def descendants(pid: int) -> list[int]:
    """Every live process below `pid` (children, their children, …)."""
    out, todo = [], [pid]
    while todo:
        kids = children_of(todo.pop())
        out += kids
        todo += kids
    return out


def wait_gone(pids: list[int], timeout: float = 10.0) -> list[int]:
    """The pids (and their groups' members) still alive after `timeout`."""
    deadline = time.monotonic() + timeout
    while True:
        left = [p for p in pids if alive(p)] + [m for p in pids for m in group_members(p)]
        if not left or time.monotonic() > deadline:
            return sorted(set(left))
        time.sleep(0.1)


@contextmanager
def http_server(name: str, tmp: Path, **extra_env: str) -> Iterator[str]:
    """The test server over streamable HTTP on 127.0.0.1; yields its URL."""
    port = free_port()
    env = {**os.environ, "MCP_TEST_RECORD": str(tmp / f"{name}-record.jsonl"), **extra_env}
    log = open(tmp / f"{name}-http.log", "w")  # noqa: SIM115 - closed below
    proc = subprocess.Popen(
        [sys.executable, str(SERVER), name, "--http", str(port)], stdout=log, stderr=subprocess.STDOUT, env=env
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"the HTTP MCP server did not start: {(tmp / f'{name}-http.log').read_text()}") from None
                time.sleep(0.1)
        yield f"http://127.0.0.1:{port}/mcp"
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
        log.close()
