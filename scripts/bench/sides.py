"""The two sides compared: a real `localtools serve` subprocess spoken to over HTTP with
streaming, and llama-cpp-python's own `Llama.create_completion` on the same prompt.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import re
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

from .common import StreamSample

READY = re.compile(r"localtools serving .* on (http://\S+)/v1")


def _pythonpath() -> str:
    """PYTHONPATH under which the server imports the same localtools as this process."""
    import localtools

    here = str(Path(localtools.__file__).resolve().parent.parent)
    rest = os.environ.get("PYTHONPATH")
    return here + (os.pathsep + rest if rest else "")


class ServerProcess:
    """`localtools serve` as a subprocess on a free 127.0.0.1 port."""

    def __init__(self, model: str | None, threads: int, n_ctx: int, timeout: float = 180.0) -> None:
        cmd = [sys.executable, "-m", "localtools", "serve"]
        if model is not None:
            cmd.append(model)
        cmd += ["--host", "127.0.0.1", "--port", "0", "--threads", str(threads), "--n-ctx", str(n_ctx),
                "--seed", "0", "--log-level", "warning",
                # part 1 compares free text with raw create_completion on the same prompt; decide
                # mode (the default for untrained dialects) would make the server answer otherwise
                "--auto-tools", "native"]
        self._log = tempfile.NamedTemporaryFile(prefix="localtools-bench-", suffix=".log", delete=False)
        started = time.perf_counter()
        self.proc = subprocess.Popen(
            cmd, stdout=subprocess.PIPE, stderr=self._log, text=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1", "PYTHONPATH": _pythonpath()},
        )
        self.url = self._wait_ready(timeout)
        self.ready_s = time.perf_counter() - started

    def _wait_ready(self, timeout: float) -> str:
        found: dict[str, str] = {}

        def read_stdout() -> None:
            assert self.proc.stdout is not None
            for line in self.proc.stdout:  # keep draining so the pipe never fills
                match = READY.search(line)
                if match and "url" not in found:
                    found["url"] = match.group(1)

        threading.Thread(target=read_stdout, daemon=True).start()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and self.proc.poll() is None:
            url = found.get("url")
            if url is not None:
                with contextlib.suppress(OSError):
                    with urllib.request.urlopen(f"{url}/health", timeout=2) as reply:
                        if reply.status == 200:
                            return url
            time.sleep(0.05)
        self.close()
        log = Path(self._log.name).read_text(errors="replace")[-2000:]
        raise RuntimeError(f"localtools serve did not become ready:\n{log}")

    def peak_rss_mb(self) -> float | None:
        """The server's peak resident memory (Linux /proc VmHWM), in MiB."""
        try:
            status = Path(f"/proc/{self.proc.pid}/status").read_text()
        except OSError:
            return None
        match = re.search(r"^VmHWM:\s+(\d+) kB", status, re.M)
        return int(match.group(1)) / 1024 if match else None

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)
        self._log.close()
        with contextlib.suppress(OSError):
            os.unlink(self._log.name)


def stream_chat(url: str, body: dict[str, Any]) -> StreamSample:
    """POST a streaming chat request; time the first and last delta and read the usage.

    A lean stdlib client (http.client, one connection per request): the client shares the
    machine with the server, and a heavy one would be counted as server overhead.
    """
    body = {**body, "stream": True, "stream_options": {"include_usage": True}}
    parts = urllib.parse.urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=600)
    first = last = None
    text: list[str] = []
    calls: dict[int, dict[str, Any]] = {}
    usage: dict[str, Any] = {}
    try:
        start = time.perf_counter()
        conn.request("POST", "/v1/chat/completions", body=json.dumps(body).encode("utf-8"),
                     headers={"Content-Type": "application/json", "Accept": "text/event-stream"})
        response = conn.getresponse()
        if response.status != 200:
            raise RuntimeError(f"server answered {response.status}: {response.read()[:500]!r}")
        while True:
            line = response.readline()
            if not line:
                break
            if not line.startswith(b"data: "):
                continue
            data = line[6:].strip()
            if data == b"[DONE]":
                break
            chunk = json.loads(data)
            if "error" in chunk:
                raise RuntimeError(f"server error in stream: {chunk['error']}")
            if chunk.get("usage"):
                usage = chunk["usage"]
            for choice in chunk.get("choices", []):
                delta = choice.get("delta") or {}
                got = False
                if delta.get("content"):
                    text.append(delta["content"])
                    got = True
                for tc in delta.get("tool_calls") or []:
                    call = calls.setdefault(tc["index"], {"id": tc.get("id"), "name": "", "arguments": ""})
                    fn = tc.get("function") or {}
                    call["name"] += fn.get("name") or ""
                    call["arguments"] += fn.get("arguments") or ""
                    got = True
                if got:
                    now = time.perf_counter()
                    first = now if first is None else first
                    last = now
    finally:
        conn.close()
    n = int(usage.get("completion_tokens", 0))
    ttft = (first or time.perf_counter()) - start
    span = (last - first) if first is not None and last is not None else 0.0
    return StreamSample(
        ttft_s=ttft,
        decode_tps=(n - 1) / span if n > 1 and span > 0 else 0.0,
        completion_tokens=n,
        prompt_tokens=int(usage.get("prompt_tokens", 0)),
        cached_tokens=int((usage.get("prompt_tokens_details") or {}).get("cached_tokens", 0)),
        text="".join(text),
        calls=[calls[i] for i in sorted(calls)],
    )


class RawBaseline:
    """llama-cpp-python's high-level `Llama`, the reference the server is compared with."""

    def __init__(self, model_path: str, threads: int, n_ctx: int) -> None:
        from localtools.engine import baseline_llama

        self.llm = baseline_llama(model_path, n_ctx=n_ctx, n_threads=threads)

    def stream(self, prompt: str, max_tokens: int, stop: list[str]) -> StreamSample:
        """create_completion(stream=True), greedy, timed like the server.

        Like the server, llama-cpp-python keeps its KV cache between calls and reuses the
        longest common prefix, so both sides evaluate the same new tokens.
        """
        llm = self.llm
        start = time.perf_counter()
        first = last = None
        text: list[str] = []
        for chunk in llm.create_completion(prompt, max_tokens=max_tokens, temperature=0.0, stop=stop, stream=True):
            piece = chunk["choices"][0]["text"]
            if piece:
                now = time.perf_counter()
                first = now if first is None else first
                last = now
                text.append(piece)
        out = "".join(text)
        n = len(llm.tokenize(out.encode("utf-8"), add_bos=False, special=True)) if out else 0
        span = (last - first) if first is not None and last is not None else 0.0
        return StreamSample(
            ttft_s=(first or time.perf_counter()) - start,
            decode_tps=(n - 1) / span if n > 1 and span > 0 else 0.0,
            completion_tokens=n,
            text=out,
        )

    def close(self) -> None:
        close = getattr(self.llm, "close", None)
        if callable(close):
            close()
