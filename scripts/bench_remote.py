"""localtools in front of llama-server vs the same llama-server called directly.

    .venv/bin/python scripts/bench_remote.py [--model PATH] [--repeats 5] [--tokens 64] [--threads 2] [--json]

Starts llama-server (built by scripts/build_llama_server.sh; `--jinja`, one slot) twice,
the same binary, model and flags: one called directly, one behind `localtools serve
--engine-url`, so each side keeps its own prompt cached (the two sides render tools
differently; sharing one server's slots, each would evict the other's prompt). It sends
the same OpenAI chat requests, streamed, greedy, to both: plain chat, tools with
`tool_choice: required` and `auto`. The direct side is llama-server's own tool calling
(its `--jinja` template handling, its grammar). A third side, "raw", sends localtools'
own upstream request (its prompt tokens, grammar, stop strings, built in-process) straight
to localtools' llama-server: localtools vs raw is the cost of localtools itself, while
localtools vs direct also compares two ways of doing tools (different tool prompts and
grammars, so different work for the engine). Requests rotate between the sides, so a
busy machine's drift hits all alike; the processes never run at the same time.

Per workload it prints, medians over the repeats:
  ttft_ms      client-side time to the first content or tool-call delta;
  tokens       completion tokens (usage);
  tok/s        end to end, completion tokens / (last byte - request sent): prefill,
               the hop and localtools' own work included, so the ratio is conservative;
  overhead_ms  per pair, localtools' wall time minus the other side's scaled to the same
               token count (vs raw: the extra hop, rendering, tokenizing, parsing);
  ratio        localtools tok/s / the other side's (goal: >= 0.95);
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


def _chat_delta(chunk: dict[str, Any]) -> tuple[bool, int | None]:
    """(whether an OpenAI chat chunk carries output, its usage's completion tokens)."""
    usage = (chunk.get("usage") or {}).get("completion_tokens")
    for choice in chunk.get("choices") or []:
        delta = choice.get("delta") or {}
        if delta.get("content") or delta.get("tool_calls") or delta.get("reasoning_content"):
            return True, usage
    return False, usage


def _completion_delta(event: dict[str, Any]) -> tuple[bool, int | None]:
    """The same for a llama-server /completion event."""
    return bool(event.get("content")), event.get("tokens_predicted") if event.get("stop") else None


def timed_stream(client: httpx.Client, url: str, body: dict[str, Any]) -> dict[str, float]:
    """One streamed request (chat, or /completion for a body with `prompt`): time to the
    first output, total time, completion tokens."""
    raw = "prompt" in body
    path, read = ("/completion", _completion_delta) if raw else ("/v1/chat/completions", _chat_delta)
    t0 = time.perf_counter()
    first = None
    deltas = 0
    tokens = None
    with client.stream("POST", url + path, json=body) as response:
        response.raise_for_status()
        for line in response.iter_lines():
            if not line.startswith("data:") or line.endswith("[DONE]"):
                continue
            output, usage = read(json.loads(line[5:]))
            tokens = usage if usage is not None else tokens
            if output:
                first = first if first is not None else time.perf_counter()
                deltas += 1
    if first is None:
        raise RuntimeError(f"no output from {url}{path}")
    end = time.perf_counter()
    n = int(tokens or deltas)
    return {"ttft_ms": (first - t0) * 1000, "tokens": n, "wall_ms": (end - t0) * 1000, "tps": n / (end - t0)}


def raw_body(model: Path, upstream: str, workload: dict[str, Any], max_tokens: int) -> dict[str, Any]:
    """The /completion body localtools itself sends upstream for this request (its prompt
    tokens, grammar and stop strings), built in-process: the "raw" side."""
    from localtools.engine import SamplingParams
    from localtools.remote import llama_server, load_remote_runtime
    from localtools.service import ChatOptions, start_chat

    runtime = load_remote_runtime([upstream], str(model))
    try:
        options = ChatOptions(tools=workload.get("tools"), tool_choice=workload.get("tool_choice"),
                              sampling=SamplingParams(max_tokens=max_tokens, temperature=0.0))
        run = start_chat(runtime, workload["messages"], options)
        handle = run._handle  # the generation as submitted: prompt and SamplingParams
        run.cancel()
        tokens = runtime.engine.tokenize_prompt(handle.prompt)
        return llama_server.request_body(tokens, handle.params, -1, max_tokens)
    finally:
        runtime.close()


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
        sides = {"localtools": front, "raw": servers[0].url, "direct": servers[1].url}
        results: dict[str, Any] = {}
        with httpx.Client(timeout=300) as client:
            for name, workload in WORKLOADS.items():
                body = {"model": "bench", "stream": True, "stream_options": {"include_usage": True},
                        "temperature": 0, "max_tokens": args.tokens, **workload}
                print(f"bench_remote: {name}", file=sys.stderr, flush=True)
                bodies = {"localtools": body, "raw": raw_body(model, servers[0].url, workload, args.tokens),
                          "direct": body}
                for side, url in sides.items():  # warm-up: the slot's cache, the connection
                    timed_stream(client, url, bodies[side])
                runs: dict[str, list[dict[str, float]]] = {side: [] for side in sides}
                cpu = 0.0
                for _ in range(args.repeats):
                    for side, url in sides.items():
                        before = cpu_seconds(proc.pid)
                        runs[side].append(timed_stream(client, url, bodies[side]))
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
    out: dict[str, Any] = dict(med)
    for base in ("direct", "raw"):
        pairs = zip(runs[base], runs["localtools"], strict=True)
        overhead = [f["wall_ms"] - d["wall_ms"] * f["tokens"] / max(1, d["tokens"]) for d, f in pairs]
        out[f"overhead_ms_vs_{base}"] = statistics.median(overhead)
        out[f"ratio_vs_{base}"] = med["localtools"]["tps"] / med[base]["tps"]
    return out


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
        for side in ("direct", "raw", "localtools"):
            r = res[side]
            print(f"{name:10} {side:11} {r['ttft_ms']:8.1f} {r['wall_ms']:8.1f} {r['tokens']:6.0f} {r['tps']:7.1f}")
        for base in ("direct", "raw"):
            print(f"{'':10} vs {base:6}: overhead {res[f'overhead_ms_vs_{base}']:+7.1f} ms per request, "
                  f"ratio {res[f'ratio_vs_{base}']:.3f} (goal >= 0.95)")
        print(f"{'':10} localtools CPU {res['cpu_ms_per_request']:.1f} ms per request, "
              f"{res['cpu_ms_per_token']:.2f} ms per token")


if __name__ == "__main__":
    main()
