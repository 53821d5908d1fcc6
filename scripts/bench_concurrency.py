#!/usr/bin/env python3
"""Concurrency benchmark: 1, 2, 4 and 8 streaming clients at once against
`localtools serve --parallel 1`, `--parallel 4`, and llama-server `-np 4` when its binary
is found (scripts/build_llama_server.sh builds it; or LOCALTOOLS_LLAMA_SERVER=PATH).

    python scripts/bench_concurrency.py [--model PATH] [--max-tokens 96] [--threads N] [--mix text] [--rounds 3]
                                        [--flash-attn-off] [--llama-server-np1] [--baseline-tree PATH]

Each client streams one request (mixed prompt lengths; every third offers a tool with
`tool_choice: "required"`; `--mix text` drops the tool so every server evaluates the same
prompts). Per server and client count it prints aggregate generated tokens/s, p50/p95
time to first token, p50 per-token latency, the prompt tokens the server reported, then
the ratios the issue sets goals for. Without `--threads` every server runs on its own
default thread count. Not a timed test: on a shared machine the numbers are noise.

All servers run at once and take turns, round by round (each round in a different order,
with prompts of its own so no round replays another's cache): the machine's speed drifts
by 10-20% over minutes, which measuring one server after the other put into the ratios.
Each figure is the median over the rounds; the ratios are the medians of each round's
ratio, with every round's shown. Between turns the bench waits `SETTLE_SECONDS`: llama-server
keeps working for ~0.2 s after a reply (0.15 s of CPU, measured), and without the pause the
server whose turn came next paid for it; the order turns by one each round, so that was
always `--parallel 1`, whose single client then ran 1.2x slower than `--parallel 4`'s and
whose four clients' throughput made the `--parallel 4 / --parallel 1` ratio look ~10% better.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

CLIENTS = (1, 2, 4, 8)
SETTLE_SECONDS = 1.0  # the pause between two servers' turns (see the module docstring)
LONG_SYSTEM = "You are a careful assistant. Answer in full sentences and give details. " * 12
TOOL = {"type": "function", "function": {
    "name": "get_weather", "description": "Current weather in a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}


def request_body(k: int, max_tokens: int, tools: bool = True, salt: int = 0) -> dict[str, Any]:
    """Client `k`'s request: its kind from `k`, its wording from `k + salt` (the shared
    system prompt's from `salt`, so a round never finds another round's prefix cached)."""
    kind, n = k % 3, k + salt
    if kind == 0:
        messages = [{"role": "user", "content": f"Tell me a long story about a cat named {n}."}]
    elif kind == 1:
        messages = [{"role": "system", "content": f"(session {salt}) {LONG_SYSTEM}"},
                    {"role": "user", "content": f"Explain in detail how bread is made (variant {n})."}]
    else:
        messages = [{"role": "user", "content": f"What is the weather in city number {n}?"}]
    body: dict[str, Any] = {"model": "m", "messages": messages, "max_tokens": max_tokens, "stream": True,
                            "temperature": 0.0, "stream_options": {"include_usage": True}}
    if kind == 2 and tools:
        body.update(tools=[TOOL], tool_choice="required")
    return body


@dataclass
class ClientResult:
    ttft: float | None
    tokens: int
    per_token: float | None
    error: str | None = None
    prompt_tokens: int = 0


def one_client(url: str, k: int, max_tokens: int, tools: bool = True, salt: int = 0) -> ClientResult:
    t0 = time.perf_counter()
    first = last = None
    deltas, usage = 0, None
    try:
        with httpx.stream("POST", f"{url}/v1/chat/completions", json=request_body(k, max_tokens, tools, salt),
                          timeout=600) as resp:
            if resp.status_code != 200:
                return ClientResult(None, 0, None, f"HTTP {resp.status_code}")
            for line in resp.iter_lines():
                if not line.startswith("data: ") or line == "data: [DONE]":
                    continue
                chunk = json.loads(line[6:])
                usage = chunk.get("usage") or usage
                for choice in chunk.get("choices") or []:
                    delta = choice.get("delta") or {}
                    if delta.get("content") or delta.get("tool_calls") or delta.get("reasoning_content"):
                        last = time.perf_counter()
                        first = first or last
                        deltas += 1
    except httpx.HTTPError as exc:
        return ClientResult(None, 0, None, type(exc).__name__)
    tokens = int(usage["completion_tokens"]) if usage else deltas
    per_token = (last - first) / (tokens - 1) if first is not None and last is not None and tokens > 1 else None
    prompt = int(usage.get("prompt_tokens", 0)) if usage else 0
    return ClientResult(None if first is None else first - t0, tokens, per_token, prompt_tokens=prompt)


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    values = sorted(values)
    return values[min(len(values) - 1, int(round(q * (len(values) - 1))))]


def run_clients(url: str, n: int, max_tokens: int, tools: bool, salt: int = 0) -> dict[str, float]:
    with ThreadPoolExecutor(n) as pool:
        t0 = time.perf_counter()
        results = list(pool.map(lambda k: one_client(url, k, max_tokens, tools, salt), range(n)))
        wall = time.perf_counter() - t0
    ttfts = [r.ttft for r in results if r.ttft is not None]
    per_tok = [r.per_token for r in results if r.per_token is not None]
    return {
        "tok_s": sum(r.tokens for r in results) / wall,
        "ttft_p50": pct(ttfts, 0.5), "ttft_p95": pct(ttfts, 0.95), "ttft_max": max(ttfts, default=float("nan")),
        "tok_ms_p50": 1000 * pct(per_tok, 0.5),
        "errors": sum(1 for r in results if r.error),
        "prompt_tokens": sum(r.prompt_tokens for r in results),
    }


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_http(url: str, proc: subprocess.Popen[bytes], timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}")
        try:
            if httpx.get(url + "/health", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    raise RuntimeError(f"{url} not ready after {timeout}s")


@contextmanager
def started(args: list[str], url: str, tree: Path | None = None) -> Iterator[str]:
    """Run a server until the block ends; with `tree`, its localtools package is imported
    from that checkout (PYTHONPATH), not from this one."""
    log = open(os.devnull, "wb")
    env = None
    if tree is not None:
        env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(tree), os.environ.get("PYTHONPATH")])))
    proc = subprocess.Popen(args, stdout=log, stderr=log, cwd=tree, env=env)
    try:
        wait_http(url, proc)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)
        log.close()


def localtools_server(model: str | None, parallel: int, threads: int | None, n_ctx: int, *extra: str,
                      tree: Path | None = None) -> Any:
    port = free_port()
    args = [sys.executable, "-m", "localtools", "serve", *([model] if model else []),
            "--host", "127.0.0.1", "--port", str(port), "--parallel", str(parallel), "--n-ctx", str(n_ctx), *extra]
    if threads:
        args += ["--threads", str(threads)]
    return started(args, f"http://127.0.0.1:{port}", tree)


def llama_server_binary() -> Path | None:
    env = os.environ.get("LOCALTOOLS_LLAMA_SERVER")
    if env:
        return Path(env) if os.access(env, os.X_OK) else None
    from localtools.engine import llama_cpp_version

    path = Path.home() / ".cache" / "localtools" / f"llama-server-{llama_cpp_version()}" / "llama-server"
    return path if os.access(path, os.X_OK) else None


def llama_server(binary: Path, model: str, slots: int, threads: int | None, n_ctx: int) -> Any:
    port = free_port()
    args = [str(binary), "-m", model, "--host", "127.0.0.1", "--port", str(port), "-c", str(n_ctx * slots),
            "-np", str(slots), "--jinja", "--no-webui", *(["-t", str(threads)] if threads else [])]
    return started(args, f"http://127.0.0.1:{port}")


NO_FLASH = "localtools --parallel 4 --flash-attn off"
BASELINE = "baseline tree --parallel 4"
PEER_NP4 = "llama-server -np 4"
PEER_NP1 = "llama-server -np 1"
Results = dict[str, dict[int, list[dict[str, float]]]]  # server -> clients -> one row per round


def measure_rounds(servers: dict[str, Any], max_tokens: int, clients: tuple[int, ...], tools: bool,
                   rounds: int) -> Results:
    """Start every server, then let them take turns: per round, per client count, each
    server once (the order turns by one each round)."""
    results: Results = {name: {n: [] for n in clients} for name in servers}
    with ExitStack() as stack:
        urls = {name: stack.enter_context(server) for name, server in servers.items()}
        for url in urls.values():
            one_client(url, 0, 4)  # warm-up
        names = list(urls)
        for r in range(rounds):
            order = names[r % len(names):] + names[:r % len(names)]
            for n in clients:
                for name in order:
                    time.sleep(SETTLE_SECONDS)  # the last server's after-work is not the next one's cost
                    results[name][n].append(run_clients(urls[name], n, max_tokens, tools, salt=100 * (r + 1)))
            print(f"round {r + 1}/{rounds} done", flush=True)
    return results


def median_row(rows: list[dict[str, float]]) -> dict[str, float]:
    return {key: statistics.median(row[key] for row in rows) for key in rows[0]}


def print_table(results: Results, clients: tuple[int, ...]) -> None:
    print(f"{'server':<36} {'clients':>3} {'tok/s':>8} {'ttft p50':>7} {'p95':>7} {'max':>7} {'ms/tok':>8} "
          f"{'prompt':>6} err")
    for name, by_n in results.items():
        for n in clients:
            r = median_row(by_n[n])
            print(f"{name:<36} {n:>3}  {r['tok_s']:8.1f}  {r['ttft_p50']:7.2f}  {r['ttft_p95']:7.2f}  "
                  f"{r['ttft_max']:7.2f}  {r['tok_ms_p50']:8.1f}  {int(r['prompt_tokens']):>6}  {int(r['errors']):>3}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default=None, help="GGUF path (default: the bundled SmolLM2-135M)")
    ap.add_argument("--max-tokens", type=int, default=96)
    ap.add_argument("--threads", type=int, default=None, help="threads for every server (default: each one's own)")
    ap.add_argument("--n-ctx", type=int, default=2048, help="context per slot")
    ap.add_argument("--clients", default=",".join(map(str, CLIENTS)))
    ap.add_argument("--rounds", type=int, default=3, help="turns each server takes per client count")
    ap.add_argument("--mix", choices=("mixed", "text"), default="mixed",
                    help="text: no tool request, so every server evaluates the same prompts")
    ap.add_argument("--flash-attn-off", action="store_true",
                    help="also run `--parallel 4 --flash-attn off` (bitwise reproducible at any length, slower on CPU)")
    ap.add_argument("--llama-server-np1", action="store_true",
                    help="also run llama-server -np 1, for llama-server's own -np 4 / -np 1 ratio")
    ap.add_argument("--baseline-tree", type=Path, default=None,
                    help="also run `--parallel 4` from this checkout (e.g. a git worktree of main) "
                         "to compare a change in the same run")
    ap.add_argument("--json", action="store_true", help="print the results as JSON at the end")
    args = ap.parse_args(argv)
    clients = tuple(int(c) for c in args.clients.split(","))
    from localtools.default_model import default_model_path

    model = args.model or str(default_model_path())
    tools = args.mix == "mixed"
    threads_label = f"-t {args.threads}" if args.threads else "default threads"
    print(f"{os.cpu_count()} CPUs, model {Path(model).name}, {args.max_tokens} tokens per client, "
          f"{threads_label}, {args.mix} prompts, {args.rounds} rounds")
    servers: dict[str, Any] = {
        f"localtools --parallel {p}": localtools_server(model, p, args.threads, args.n_ctx) for p in (1, 4)}
    if args.flash_attn_off:
        servers[NO_FLASH] = localtools_server(model, 4, args.threads, args.n_ctx, "--flash-attn", "off")
    if args.baseline_tree is not None:
        if not (args.baseline_tree / "localtools" / "__init__.py").is_file():
            ap.error(f"--baseline-tree: no localtools package in {args.baseline_tree}")
        servers[BASELINE] = localtools_server(model, 4, args.threads, args.n_ctx, tree=args.baseline_tree.resolve())
    binary = llama_server_binary()
    if binary is None:
        print("llama-server not found (scripts/build_llama_server.sh, or LOCALTOOLS_LLAMA_SERVER): skipped")
    else:
        servers[f"{PEER_NP4} {threads_label}"] = llama_server(binary, model, 4, args.threads, args.n_ctx)
        if args.llama_server_np1:
            servers[f"{PEER_NP1} {threads_label}"] = llama_server(binary, model, 1, args.threads, args.n_ctx)
    results = measure_rounds(servers, args.max_tokens, clients, tools, args.rounds)
    print_table(results, clients)
    print_ratios(results, clients)
    if args.json:
        print(json.dumps(results, indent=2))
    return 0


def round_ratios(a: list[dict[str, float]], b: list[dict[str, float]], key: str = "tok_s") -> str:
    """The median of the per-round ratios a/b, then every round's."""
    each = [x[key] / y[key] for x, y in zip(a, b, strict=True)]
    return f"{statistics.median(each):.2f} ({' '.join(f'{r:.2f}' for r in each)})"


def rows_of(results: Results, prefix: str) -> dict[int, list[dict[str, float]]] | None:
    """The results of the server whose label starts with `prefix` (llama-server's carry
    its thread setting), if it ran."""
    return next((rows for label, rows in results.items() if label.startswith(prefix)), None)


def print_ratios(results: Results, clients: tuple[int, ...]) -> None:
    for four in ("localtools --parallel 4", NO_FLASH):
        if four in results:
            print_ratios_of(results, four, clients)
    peer4, peer1 = rows_of(results, PEER_NP4), rows_of(results, PEER_NP1)
    if peer4 and peer1:
        print("\nllama-server's own -np 4 / -np 1 (aggregate tok/s)")
        for n in clients:
            print(f"  {n} clients: {round_ratios(peer4[n], peer1[n])}")
    if BASELINE in results:
        mine, base = results["localtools --parallel 4"], results[BASELINE]
        print("\nthis tree / baseline tree, both --parallel 4 (tok/s; slowest first token, s)")
        for n in clients:
            print(f"  {n} clients: {round_ratios(mine[n], base[n])}; "
                  f"{median_row(mine[n])['ttft_max']:.2f} / {median_row(base[n])['ttft_max']:.2f}")


def print_ratios_of(results: Results, name: str, clients: tuple[int, ...]) -> None:
    one, four = results["localtools --parallel 1"], results[name]
    ref = rows_of(results, PEER_NP4)
    print(f"\nratios of {name} (aggregate tok/s; median of the rounds, then each round)")
    for n in clients:
        line = f"  {n} clients: --parallel 4 / --parallel 1 = {round_ratios(four[n], one[n])}"
        if ref:
            line += f"; localtools 4 / llama-server 4 = {round_ratios(four[n], ref[n])}"
        print(line)
    if ref and 1 in clients:
        decode = round_ratios(ref[1], four[1], key="tok_ms_p50")  # per-token time: theirs / ours
        print(f"  1 client decode speed (ms per token, llama-server 4 / localtools 4) = {decode}")
    if ref:
        print("  slowest first token, localtools 4 / llama-server 4 (s): "
              + "; ".join(f"{n} clients {median_row(four[n])['ttft_max']:.2f} / {median_row(ref[n])['ttft_max']:.2f}"
                          for n in clients))


if __name__ == "__main__":
    raise SystemExit(main())
