#!/usr/bin/env python3
"""Load test: concurrent clients against a live `localtools serve`, every answer checked.

    python scripts/load_test.py                       # starts the default model itself
    python scripts/load_test.py --clients 16 --requests 50 --disconnects 40
    python scripts/load_test.py --url http://127.0.0.1:8000 --pid 1234

Each request carries a value only it may get back, forced by a grammar, so an answer
can be matched to its request (a mix-up between concurrent requests would show):
  * json / json-stream: response_format json_schema whose `id` is a const "req-N";
  * tool / tool-stream: a named tool whose `city` is an enum of one value "cityN".
Then many clients open an endless stream and drop it after a few chunks; the server
must cancel those generations and keep serving. RSS of the server is read from /proc
before and after (when its pid is known). tests/test_load.py runs this small.
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

KINDS = ("json", "json-stream", "tool", "tool-stream")
ENDLESS = [{"role": "user", "content": "Continue this sequence forever without stopping: 1, 2, 3, 4, 5,"}]


@dataclass
class LoadReport:
    requests: int = 0
    completed: int = 0
    errors: list[str] = field(default_factory=list)
    by_kind: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0
    latencies: list[float] = field(default_factory=list)
    disconnects: int = 0
    disconnect_errors: list[str] = field(default_factory=list)
    disconnect_seconds: float = 0.0
    rss_before_kb: int | None = None
    rss_after_kb: int | None = None

    @property
    def rss_growth_kb(self) -> int | None:
        if self.rss_before_kb is None or self.rss_after_kb is None:
            return None
        return self.rss_after_kb - self.rss_before_kb

    def lines(self) -> list[str]:
        lat = sorted(self.latencies) or [0.0]
        out = [
            f"requests: {self.requests}, completed and matched: {self.completed}, errors: {len(self.errors)}",
            f"by kind: {self.by_kind}",
            f"time: {self.seconds:.1f} s ({self.requests / max(self.seconds, 1e-9):.2f} req/s); "
            f"latency p50 {lat[len(lat) // 2]:.2f} s, max {lat[-1]:.2f} s",
            f"disconnects: {self.disconnects} in {self.disconnect_seconds:.1f} s, errors: {len(self.disconnect_errors)}",
        ]
        if self.rss_before_kb is not None and self.rss_after_kb is not None:
            out.append(f"server RSS: {self.rss_before_kb / 1024:.1f} MiB before, {self.rss_after_kb / 1024:.1f} MiB after "
                       f"({self.rss_growth_kb / 1024:+.1f} MiB)")
        out += [f"  error: {e}" for e in (self.errors + self.disconnect_errors)[:20]]
        return out


def rss_kb(pid: int) -> int:
    """Resident set size of a process, from /proc (Linux)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for pid {pid}")


# ---------------------------------------------------------------- one request


def request_body(kind: str, n: int, max_tokens: int) -> dict[str, Any]:
    """`max_tokens` for the JSON kinds; tool calls get twice as many (the call's markup)."""
    body: dict[str, Any] = {
        "model": "any",
        "max_tokens": max_tokens if kind.startswith("json") else 2 * max_tokens,
        "temperature": 0.8,
        "seed": n,
        "stream": kind.endswith("-stream"),
    }
    if kind.startswith("json"):
        body["messages"] = [{"role": "user", "content": f"Give request {n} an id as JSON."}]
        body["response_format"] = {"type": "json_schema", "json_schema": {"name": "ticket", "schema": {
            "type": "object", "properties": {"id": {"const": f"req-{n}"}}, "required": ["id"],
            "additionalProperties": False}}}
    else:
        body["messages"] = [{"role": "user", "content": f"What is the weather in city{n}?"}]
        body["tools"] = [{"type": "function", "function": {
            "name": "get_weather", "description": "Weather in a city",
            "parameters": {"type": "object", "properties": {"city": {"type": "string", "enum": [f"city{n}"]}},
                           "required": ["city"]}}}]
        body["tool_choice"] = {"type": "function", "function": {"name": "get_weather"}}
    return body


def read_stream(response: httpx.Response) -> dict[str, Any]:
    """The streamed chunks folded into {content, tool_calls, finish_reason}; checks the wire shape."""
    content, calls, finish, done, ids = "", {}, None, False, set()
    for line in response.iter_lines():
        if not line.startswith("data:"):
            continue
        data = line[5:].strip()
        if data == "[DONE]":
            done = True
            continue
        chunk = json.loads(data)
        if "error" in chunk:
            raise AssertionError(f"error in stream: {chunk['error']}")
        ids.add(chunk["id"])
        choice = chunk["choices"][0]
        delta = choice["delta"]
        content += delta.get("content") or ""
        for call in delta.get("tool_calls") or []:
            entry = calls.setdefault(call["index"], {"name": None, "arguments": ""})
            if call.get("id"):
                entry["name"] = call["function"]["name"]
            entry["arguments"] += call["function"].get("arguments") or ""
        finish = choice["finish_reason"] or finish
    if not done or len(ids) != 1:
        raise AssertionError(f"stream without [DONE] or with several ids ({done}, {ids})")
    return {"content": content or None, "tool_calls": [calls[i] for i in sorted(calls)], "finish_reason": finish}


def check_answer(kind: str, n: int, reply: dict[str, Any]) -> None:
    """Raise AssertionError unless the reply is well-formed and this request's own."""
    if kind.startswith("json"):
        assert reply["finish_reason"] == "stop", reply
        assert not reply["tool_calls"], reply
        assert json.loads(reply["content"]) == {"id": f"req-{n}"}, reply
    else:
        assert reply["finish_reason"] == "tool_calls", reply
        assert len(reply["tool_calls"]) == 1 and reply["tool_calls"][0]["name"] == "get_weather", reply
        assert json.loads(reply["tool_calls"][0]["arguments"]) == {"city": f"city{n}"}, reply


def one_request(client: httpx.Client, kind: str, n: int, max_tokens: int) -> None:
    body = request_body(kind, n, max_tokens)
    if body["stream"]:
        with client.stream("POST", "/v1/chat/completions", json=body) as response:
            if response.status_code != 200:
                raise AssertionError(f"HTTP {response.status_code}: {response.read()[:300]!r}")
            reply = read_stream(response)
    else:
        response = client.post("/v1/chat/completions", json=body)
        if response.status_code != 200:
            raise AssertionError(f"HTTP {response.status_code}: {response.text[:300]}")
        data = response.json()
        assert data["object"] == "chat.completion" and data["usage"]["completion_tokens"] >= 1, data
        message = data["choices"][0]["message"]
        reply = {
            "content": message["content"],
            "tool_calls": [{"name": c["function"]["name"], "arguments": c["function"]["arguments"]}
                           for c in message.get("tool_calls") or []],
            "finish_reason": data["choices"][0]["finish_reason"],
        }
    check_answer(kind, n, reply)


def drop_mid_stream(base_url: str, chunks: int = 3) -> None:
    """Open an endless stream, read a few chunks, hang up."""
    body = {"messages": ENDLESS, "max_tokens": 2000, "temperature": 0, "stream": True}
    with httpx.stream("POST", f"{base_url}/v1/chat/completions", json=body, timeout=600) as response:
        if response.status_code != 200:
            raise AssertionError(f"HTTP {response.status_code}")
        seen = 0
        for line in response.iter_lines():
            if line.startswith("data:"):
                seen += 1
                if seen >= chunks:
                    return  # leaving the block closes the connection


# ---------------------------------------------------------------- the run


def run_load(base_url: str, clients: int = 8, per_client: int = 25, disconnects: int = 20,
             max_tokens: int = 24, pid: int | None = None) -> LoadReport:
    """Run the load and disconnect phases; never raises for a failed request (see report.errors)."""
    report = LoadReport(requests=clients * per_client)
    lock = threading.Lock()
    with httpx.Client(base_url=base_url, timeout=600) as warm:  # first request loads caches; not counted
        one_request(warm, "json", 0, max_tokens)
    if pid is not None:
        report.rss_before_kb = rss_kb(pid)

    def client_loop(c: int) -> None:
        with httpx.Client(base_url=base_url, timeout=600) as client:
            for r in range(per_client):
                n = 1 + c * per_client + r
                kind = KINDS[(c + r) % len(KINDS)]
                started = time.monotonic()
                try:
                    one_request(client, kind, n, max_tokens)
                except Exception as exc:  # noqa: BLE001 - every failure is reported
                    with lock:
                        report.errors.append(f"{kind} #{n}: {type(exc).__name__}: {str(exc)[:300]}")
                    continue
                with lock:
                    report.completed += 1
                    report.by_kind[kind] = report.by_kind.get(kind, 0) + 1
                    report.latencies.append(time.monotonic() - started)

    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=clients) as pool:
        list(pool.map(client_loop, range(clients)))
    report.seconds = time.monotonic() - started

    def dropper(_: int) -> None:
        try:
            drop_mid_stream(base_url)
        except Exception as exc:  # noqa: BLE001
            with lock:
                report.disconnect_errors.append(f"{type(exc).__name__}: {exc}")
            return
        with lock:
            report.disconnects += 1

    started = time.monotonic()
    if disconnects:
        with ThreadPoolExecutor(max_workers=disconnects) as pool:
            list(pool.map(dropper, range(disconnects)))
    report.disconnect_seconds = time.monotonic() - started
    if pid is not None:
        report.rss_after_kb = rss_kb(pid)
    return report


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--url", help="a running server (default: start `localtools serve` on the default model)")
    ap.add_argument("--pid", type=int, help="the running server's pid, for RSS figures")
    ap.add_argument("--clients", type=int, default=8)
    ap.add_argument("--requests", type=int, default=25, help="requests per client")
    ap.add_argument("--disconnects", type=int, default=20)
    ap.add_argument("--max-tokens", type=int, default=24)
    args = ap.parse_args(argv)
    run = lambda url, pid: run_load(url, args.clients, args.requests, args.disconnects,  # noqa: E731
                                    args.max_tokens, pid)
    if args.url:
        report = run(args.url.rstrip("/"), args.pid)
    else:
        sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
        from tests.live_server import server_process

        with server_process(["--n-ctx", "2048"]) as (proc, url):
            report = run(url, proc.pid)
    print("\n".join(report.lines()))
    return 0 if not report.errors and not report.disconnect_errors else 1


if __name__ == "__main__":
    raise SystemExit(main())
