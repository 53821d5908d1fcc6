"""Finding and running the llama-server binary built by scripts/build_llama_server.sh.

Tests that need it call `require_llama_server()`: where the binary is absent it skips the
test with the reason (never a silent pass). `.ci/run` builds it and exports its path.
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import time
from pathlib import Path

import httpx
import pytest

ROOT = Path(__file__).resolve().parent.parent


def pinned_version() -> str:
    """The llama-cpp-python version pinned in pyproject.toml (the cache key of the build)."""
    m = re.search(r'"llama-cpp-python==([0-9][0-9a-z.]*)"', (ROOT / "pyproject.toml").read_text())
    assert m, "pyproject.toml pins no llama-cpp-python version"
    return m.group(1)


def llama_server_path() -> tuple[Path | None, str]:
    """(the binary, "") or (None, why it is missing)."""
    env = os.environ.get("LOCALTOOLS_LLAMA_SERVER")
    if env:
        path = Path(env)
        return (path, "") if os.access(path, os.X_OK) else (None, f"LOCALTOOLS_LLAMA_SERVER={env} is not executable")
    cache = Path(os.environ.get("LOCALTOOLS_CACHE") or Path.home() / ".cache" / "localtools")
    path = cache / f"llama-server-{pinned_version()}" / "llama-server"
    if os.access(path, os.X_OK):
        return path, ""
    return None, f"llama-server is not built ({path} missing): run scripts/build_llama_server.sh"


def require_llama_server() -> Path:
    path, why = llama_server_path()
    if path is None:
        print(f"SKIP: {why}")
        pytest.skip(why)
    return path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class LlamaServer:
    """One llama-server process on 127.0.0.1 serving `model`."""

    def __init__(self, binary: Path, model: Path, *, jinja: bool = False, n_ctx: int = 4096, slots: int = 1,
                 threads: int = 1, api_key: str | None = None):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        args = [
            str(binary), "-m", str(model), "--host", "127.0.0.1", "--port", str(self.port),
            "-c", str(n_ctx * slots), "-np", str(slots), "-t", str(threads), "--no-webui",
        ]
        if jinja:
            args.append("--jinja")
        if api_key:
            args += ["--api-key", api_key]
        self.log_path = Path(os.environ.get("TMPDIR", "/tmp")) / f"llama-server-{self.port}.log"
        self._log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(args, stdout=self._log, stderr=subprocess.STDOUT)

    def wait_ready(self, timeout: float = 120.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"llama-server exited ({self.proc.returncode}): {self.log_path.read_text()[-2000:]}")
            try:
                if httpx.get(self.url + "/health", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.3)
        raise RuntimeError(f"llama-server not ready after {timeout}s: {self.log_path.read_text()[-2000:]}")

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
        self._log.close()
