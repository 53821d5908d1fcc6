"""localtools in front of llama-server vs the same llama-server called directly.

    .venv/bin/python scripts/bench_remote.py [--model PATH] [--repeats 5] [--tokens 64] [--threads 2] [--json]

Starts llama-server (built by scripts/build_llama_server.sh; `--jinja`, one slot) twice,
the same binary, model and flags: one called directly, one behind `localtools serve
--engine-url`, so each side keeps its own prompt cached (the two sides render tools
differently; sharing one server's slots, each would evict the other's prompt). It sends
the same OpenAI chat requests, streamed, greedy, to both: plain chat, tools with
`tool_choice: required` and `auto`. The direct side is llama-server's own tool calling
(its `--jinja` template handling, its grammar). Requests alternate between the sides,
so a busy machine's drift hits both alike; the processes never run at the same time.

Per workload it prints, medians over the repeats:
  ttft_ms      client-side time to the first content or tool-call delta;
  tokens       completion tokens (usage);
  tok/s        end to end, completion tokens / (last byte - request sent): prefill,
               the hop and localtools' own work included, so the ratio is conservative;
  overhead_ms  per pair, localtools' wall time minus direct's scaled to the same token
               count: what the extra hop, rendering, tokenizing, grammar and parsing cost;
  ratio        localtools tok/s / direct tok/s (goal: >= 0.95);
  cpu          CPU time the localtools process spent per request and per completion
               token (from /proc; Linux): its cost, independent of how busy the
               machine is, which on a shared machine is also CPU taken from the engine.
The two sides render tools differently (llama-server's own tool handling vs the
dialect's), so with tools their outputs can differ; with plain chat they are the same
prompt and the same greedy text, the cleanest overhead figure.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from localtools.default_model import default_model_path  # noqa: E402
from tests.llama_server import LlamaServer, llama_server_path  # noqa: E402

WEATHER = {"type": "function", "function": {
    "name": "get_weather", "description": "Current weather in a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}
WORKLOADS: dict[str, dict[str, Any]] = {
    "chat": {"messages": [{"role": "user", "content": "Write a short story about a lighthouse keeper."}]},
    "required": {"messages": [{"role": "user", "content": "What is the weather in Paris and in Rome?"}],
                 "tools": [WEATHER], "tool_choice": "required"},
    "auto": {"messages": [{"role": "user", "content": "What is the weather in Paris?"}],
             "tools": [WEATHER], "tool_choice": "auto"},
}


def timed_stream(client: httpx.Client, url: str, body: dict[str, Any]) -> dict[str, float]:
    """One streamed chat request: time to first delta, last delta, completion tokens."""
    t0 = time.perf_counter()
    first = last = None
    deltas = 0
    tokens = None
    with client.stream("POST", url + "/v1/chat/completions", json=body) as response:
        response.raise_for_status()
        for line in response.iter_lines():
            if not line.startswith("data:") or line.endswith("[DONE]"):
                continue
            chunk = json.loads(line[5:])
            if chunk.get("usage"):
                tokens = chunk["usage"].get("completion_tokens")
            for choice in chunk.get("choices") or []:
                delta = choice.get("delta") or {}
                if delta.get("content") or delta.get("tool_calls") or delta.get("reasoning_content"):
                    now = time.perf_counter()
                    first = first if first is not None else now
                    last = now
                    deltas += 1
    if first is None or last is None:
        raise RuntimeError(f"no output from {url}")
    end = time.perf_counter()
    n = int(tokens or deltas)
    return {"ttft_ms": (first - t0) * 1000, "tokens": n, "wall_ms": (end - t0) * 1000, "tps": n / (end - t0)}


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (nan where /proc is missing)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return float("nan")
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def start_localtools(engine_url: str, model: Path) -> tuple[subprocess.Popen[str], str]:
    cmd = [sys.executable, "-m", "localtools", "serve", "--host", "127.0.0.1", "--port", "0",
           "--engine-url", engine_url, "--chat-template-from", str(model), "--log-level", "warning"]
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    assert proc.stdout is not None
    for line in proc.stdout:
        if "localtools serving" in line:
            return proc, line.rsplit(" on ", 1)[1].strip().removesuffix("/v1")
    raise RuntimeError(f"localtools serve exited ({proc.wait()})")


def run(args: argparse.Namespace) -> dict[str, Any]:
    binary, why = llama_server_path()
    if binary is None:
        raise SystemExit(f"bench_remote: {why}")
    model = Path(args.model) if args.model else default_model_path()
    servers = [LlamaServer(binary, model, jinja=True, n_ctx=2048, slots=1, threads=args.threads) for _ in range(2)]
    proc = None
    try:
        for server in servers:
            server.wait_ready()
        proc, front = start_localtools(servers[0].url, model)
        sides = {"localtools": front, "direct": servers[1].url}
        results: dict[str, Any] = {}
        with httpx.Client(timeout=300) as client:
            for name, workload in WORKLOADS.items():
                body = {"model": "bench", "stream": True, "stream_options": {"include_usage": True},
                        "temperature": 0, "max_tokens": args.tokens, **workload}
                print(f"bench_remote: {name}", file=sys.stderr, flush=True)
                for url in sides.values():  # warm-up: the slot's cache, the connection
                    timed_stream(client, url, body)
                runs: dict[str, list[dict[str, float]]] = {side: [] for side in sides}
                cpu = 0.0
                for _ in range(args.repeats):
                    for side, url in sides.items():
                        before = cpu_seconds(proc.pid)
                        runs[side].append(timed_stream(client, url, body))
                        if side == "localtools":
                            cpu += cpu_seconds(proc.pid) - before
                results[name] = summarize(runs)
                tokens = sum(r["tokens"] for r in runs["localtools"])
                results[name]["cpu_ms_per_request"] = 1000 * cpu / args.repeats
                results[name]["cpu_ms_per_token"] = 1000 * cpu / max(1, tokens)
        return {"model": model.name, "threads": args.threads, "repeats": args.repeats, "workloads": results}
    finally:
        if proc is not None:
            proc.terminate()
            proc.wait(15)
        for server in servers:
            server.kill()


def summarize(runs: dict[str, list[dict[str, float]]]) -> dict[str, Any]:
    med = {side: {k: statistics.median(r[k] for r in rs) for k in rs[0]} for side, rs in runs.items()}
    pairs = zip(runs["direct"], runs["localtools"], strict=True)
    overhead = [f["wall_ms"] - d["wall_ms"] * f["tokens"] / max(1, d["tokens"]) for d, f in pairs]
    return {
        "direct": med["direct"],
        "localtools": med["localtools"],
        "overhead_ms": statistics.median(overhead),
        "decode_ratio": med["localtools"]["tps"] / med["direct"]["tps"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", help="GGUF file (default: the SmolLM2-135M default model)")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--tokens", type=int, default=64, help="max_tokens per request")
    parser.add_argument("--threads", type=int, default=1, help="llama-server threads")
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # stop the servers on the way out
    report = run(args)
    if args.json:
        print(json.dumps(report, indent=2))
        return
    print(f"model {report['model']}, llama-server -t {report['threads']}, {report['repeats']} repeats (medians)")
    print(f"{'workload':10} {'side':11} {'ttft ms':>8} {'wall ms':>8} {'tokens':>6} {'tok/s':>7}")
    for name, res in report["workloads"].items():
        for side in ("direct", "localtools"):
            r = res[side]
            print(f"{name:10} {side:11} {r['ttft_ms']:8.1f} {r['wall_ms']:8.1f} {r['tokens']:6.0f} {r['tps']:7.1f}")
        print(f"{'':10} overhead {res['overhead_ms']:+.1f} ms per request, decode ratio {res['decode_ratio']:.3f}"
              f" (goal >= 0.95); localtools CPU {res['cpu_ms_per_request']:.1f} ms per request,"
              f" {res['cpu_ms_per_token']:.2f} ms per token")


if __name__ == "__main__":
    main()
