"""The benchmark users run: how much localtools costs on top of llama.cpp, in one run.

Everything is measured as a ratio between two sides run under the same conditions,
interleaved and repeated (medians), because absolute speeds on a shared machine say
little. The server is a real `localtools serve` subprocess spoken to over HTTP with
streaming; the baseline is llama-cpp-python's own `Llama.create_completion` on the very
prompt the server renders. `run_benchmark` returns a JSON-able dict; `format_table`
prints it.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
import urllib.request
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

READY = re.compile(r"localtools serving .* on (http://\S+)/v1")

Progress = Callable[[str], None]

BENCH_TOOLS: list[dict[str, Any]] = [
    {
        "type": "function",
        "function": {
            "name": "get_weather",
            "description": "Current weather for a city.",
            "parameters": {
                "type": "object",
                "properties": {
                    "city": {"type": "string", "description": "City name"},
                    "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
                },
                "required": ["city"],
            },
        },
    },
    {
        "type": "function",
        "function": {
            "name": "search_web",
            "description": "Search the web and return the top results.",
            "parameters": {
                "type": "object",
                "properties": {"query": {"type": "string"}, "max_results": {"type": "integer"}},
                "required": ["query"],
            },
        },
    },
    {
        "type": "function",
        "function": {
            "name": "write_note",
            "description": "Save a note with a title and a body of text.",
            "parameters": {
                "type": "object",
                "properties": {"title": {"type": "string"}, "body": {"type": "string"}},
                "required": ["title", "body"],
            },
        },
    },
]

STORY_REQUEST = "Write a long story about a dragon who learns to bake bread. Use many paragraphs."
TURN_QUESTIONS = [
    "What is the weather in Paris?",
    "And what is the weather in Tokyo?",
    "Search the web for bread recipes.",
    "Save a note titled shopping with the body: flour, yeast, salt.",
    "What is the weather in Lima?",
    "Search the web for dragon stories.",
]


@dataclass
class BenchSettings:
    """What one benchmark run does (quick mode: fewer repeats, shorter outputs)."""

    max_tokens: int = 192
    repeats: int = 9  # interleaved server/raw pairs (odd: a clean median)
    turns: int = 6  # user turns; each is two requests (the call, then the answer)
    grammar_tokens: int = 128
    grammar_repeats: int = 5
    threads: int | None = None  # None: what the engine picks by default (half the CPUs)
    n_ctx: int = 4096

    @classmethod
    def for_mode(cls, quick: bool) -> "BenchSettings":
        return cls(max_tokens=96, repeats=5, grammar_tokens=64, grammar_repeats=3) if quick else cls()


@dataclass
class StreamSample:
    """One streamed generation seen from the client."""

    ttft_s: float
    decode_tps: float
    completion_tokens: int
    prompt_tokens: int = 0
    cached_tokens: int = 0
    text: str = ""
    calls: list[dict[str, Any]] = field(default_factory=list)


# ---------------------------------------------------------------- the server side


class ServerProcess:
    """`localtools serve` as a subprocess on a free 127.0.0.1 port."""

    def __init__(self, model: str | None, threads: int, n_ctx: int, timeout: float = 180.0) -> None:
        cmd = [sys.executable, "-m", "localtools", "serve"]
        if model is not None:
            cmd.append(model)
        cmd += ["--host", "127.0.0.1", "--port", "0", "--threads", str(threads), "--n-ctx", str(n_ctx),
                "--seed", "0", "--log-level", "warning"]
        self._log = tempfile.NamedTemporaryFile(prefix="localtools-bench-", suffix=".log", delete=False)
        started = time.perf_counter()
        self.proc = subprocess.Popen(
            cmd, stdout=subprocess.PIPE, stderr=self._log, text=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
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


# ---------------------------------------------------------------- raw llama-cpp-python


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


# ---------------------------------------------------------------- the parts


def _median(values: list[float]) -> float:
    return statistics.median(values) if values else 0.0


def _story_messages(nonce: str) -> list[dict[str, Any]]:
    return [
        {"role": "system", "content": f"Session {nonce}. You are a helpful assistant."},
        {"role": "user", "content": STORY_REQUEST},
    ]


def _tools_with_nonce(nonce: str) -> list[dict[str, Any]]:
    """The bench tools, the first description made unique: tool prompts come early in most
    templates, so almost the whole prompt is new to both sides (a real time to first token)."""
    tools = json.loads(json.dumps(BENCH_TOOLS))
    fn = tools[0]["function"]
    fn["description"] = f"{fn['description']} (request {nonce})"
    return tools


def bench_overhead(runtime: Any, server: ServerProcess, raw: RawBaseline, s: BenchSettings, say: Progress) -> dict[str, Any]:
    """Part 1: streaming through the server (3 tools offered) vs raw create_completion."""
    from localtools.service import ChatOptions, render_prompt

    stops = list(runtime.dialect.stop_strings())
    server_runs: list[StreamSample] = []
    raw_runs: list[StreamSample] = []
    for i in range(s.repeats + 1):  # the first pair warms both sides up and is not counted
        nonce = uuid.uuid4().hex[:8]
        messages, tools = _story_messages(nonce), _tools_with_nonce(nonce)
        body = {"model": runtime.name, "messages": messages, "tools": tools, "tool_choice": "auto",
                "max_tokens": s.max_tokens, "temperature": 0.0}
        prompt = render_prompt(runtime, messages, ChatOptions(tools=tools, tool_choice="auto"))
        pair = [("server", lambda: stream_chat(server.url, body)),
                ("raw", lambda: raw.stream(prompt, s.max_tokens, stops))]
        if i % 2:
            pair.reverse()  # alternate which side goes first
        for side, run in pair:
            sample = run()
            if i > 0:
                (server_runs if side == "server" else raw_runs).append(sample)
        if i > 0:
            say(f"  overhead {i}/{s.repeats}: server {server_runs[-1].decode_tps:.1f} tok/s, "
                f"raw {raw_runs[-1].decode_tps:.1f} tok/s")
    # Ratios are taken per back-to-back pair, then the median: a burst of load from
    # elsewhere hits both runs of a pair alike and is voted out across pairs.
    pairs = list(zip(server_runs, raw_runs))
    return {
        "server_decode_tps": _median([r.decode_tps for r in server_runs]),
        "raw_decode_tps": _median([r.decode_tps for r in raw_runs]),
        "decode_ratio": _median([a.decode_tps / b.decode_tps for a, b in pairs if b.decode_tps]),
        "server_ttft_s": _median([r.ttft_s for r in server_runs]),
        "raw_ttft_s": _median([r.ttft_s for r in raw_runs]),
        "ttft_ratio": _median([a.ttft_s / b.ttft_s for a, b in pairs if b.ttft_s]),
        "decode_ratios": [a.decode_tps / b.decode_tps if b.decode_tps else None for a, b in pairs],
        "ttft_ratios": [a.ttft_s / b.ttft_s if b.ttft_s else None for a, b in pairs],
        "prompt_tokens": server_runs[-1].prompt_tokens if server_runs else 0,
        "server_completion_tokens": [r.completion_tokens for r in server_runs],
        "raw_completion_tokens": [r.completion_tokens for r in raw_runs],
    }


def _tool_result(call: dict[str, Any]) -> str:
    name = call.get("name", "")
    if name == "get_weather":
        return json.dumps({"temperature": 18, "unit": "celsius", "sky": "cloudy"})
    if name == "search_web":
        return json.dumps({"results": ["Bread basics", "Sourdough at home", "Flatbreads"]})
    return json.dumps({"saved": True})


def _chat_turn(runtime: Any, messages: list[dict[str, Any]], options: Any) -> tuple[str, list[dict[str, Any]], Any, str]:
    """One request through the same service path the server uses: (text, calls, stats, prompt)."""
    from localtools.dialects import ArgsDelta, CallStart, ContentDelta
    from localtools.service import Finish, start_chat

    text: list[str] = []
    calls: dict[int, dict[str, Any]] = {}
    stats = None
    run = start_chat(runtime, messages, options)
    for item in run:
        if isinstance(item, ContentDelta):
            text.append(item.text)
        elif isinstance(item, CallStart):
            calls[item.index] = {"id": item.id, "name": item.name, "arguments": ""}
        elif isinstance(item, ArgsDelta) and item.index in calls:
            calls[item.index]["arguments"] += item.text
        elif isinstance(item, Finish):
            stats = item.stats
    return "".join(text), [calls[i] for i in sorted(calls)], stats, run.prompt


def bench_turns(runtime: Any, s: BenchSettings, say: Progress) -> dict[str, Any]:
    """Part 2: a tool conversation; each request should evaluate only what is new.

    Runs in-process through `localtools.service` (the server's own path, minus HTTP) so the
    engine's prompt statistics are at hand. Each user turn is two requests: the user asks
    and the model must call a tool (tool_choice required), then the tool result comes back
    and the model answers (tool_choice auto: "none" would drop the tool prompt and with it the prefix).
    The last prompt is then evaluated again from an empty cache, for contrast.
    """
    from localtools.engine import GenerationStats, SamplingParams
    from localtools.service import ChatOptions

    messages: list[dict[str, Any]] = [
        {"role": "system", "content": f"Session {uuid.uuid4().hex[:8]}. You are a helpful assistant."}
    ]
    runtime.engine.reset_cache()
    rows: list[dict[str, Any]] = []
    question = 0
    last_prompt = ""
    for step in range(s.turns * 2):
        asking = step % 2 == 0
        if asking:
            messages.append({"role": "user", "content": TURN_QUESTIONS[question % len(TURN_QUESTIONS)]})
            question += 1
        options = ChatOptions(
            tools=BENCH_TOOLS, tool_choice="required" if asking else "auto", parallel_tool_calls=False,
            sampling=SamplingParams(max_tokens=48, temperature=0.0),
        )
        text, calls, st, last_prompt = _chat_turn(runtime, messages, options)
        rows.append({
            "turn": step // 2 + 1,
            "kind": "call" if asking else "answer",
            "prompt_tokens": st.prompt_tokens,
            "evaluated_tokens": st.prompt_eval_tokens,
            "cached_tokens": st.cached_tokens,
            "prompt_s": st.prompt_seconds,
            "completion_tokens": st.completion_tokens,
        })
        say(f"  turn {step // 2 + 1} {'call' if asking else 'answer'}: prompt {st.prompt_tokens}, "
            f"evaluated {st.prompt_eval_tokens}, prompt time {st.prompt_seconds * 1000:.0f} ms")
        if calls:
            ids = [c.get("id") or f"call_{step}_{i}" for i, c in enumerate(calls)]
            messages.append({"role": "assistant", "content": text or None, "tool_calls": [
                {"id": cid, "type": "function", "function": {"name": c["name"], "arguments": c["arguments"]}}
                for cid, c in zip(ids, calls)
            ]})
            for cid, c in zip(ids, calls):
                messages.append({"role": "tool", "tool_call_id": cid, "content": _tool_result(c)})
        else:
            messages.append({"role": "assistant", "content": text})
    added = [rows[0]["prompt_tokens"]] + [
        rows[i]["prompt_tokens"] - rows[i - 1]["prompt_tokens"] for i in range(1, len(rows))
    ]
    # the last turn's prompt once more, from an empty cache
    cold = GenerationStats()
    if last_prompt:
        runtime.engine.reset_cache()
        for _ in runtime.engine.generate(last_prompt, SamplingParams(max_tokens=1, temperature=0.0), stats=cold):
            pass
    return {
        "turns": rows,
        "turn_prompt_tokens": [r["evaluated_tokens"] for r in rows],
        "turn_total_prompt_tokens": [r["prompt_tokens"] for r in rows],
        "turn_added_tokens": added,
        "turn_prompt_s": [r["prompt_s"] for r in rows],
        "cold_last_prompt_tokens": cold.prompt_tokens,
        "cold_last_prompt_s": cold.prompt_seconds,
    }


def bench_switching(runtime: Any, say: Progress) -> dict[str, Any]:
    """Two conversations taking turns (A, B, A, B, A, B): with the engine's state cache,
    going back to one evaluates only its new turn; without it, all of it again."""
    from localtools.engine import SamplingParams
    from localtools.service import ChatOptions

    engine = runtime.engine
    slots = engine.state_cache_slots
    out: dict[str, Any] = {}
    try:
        for label, n_slots in (("with_state_cache", max(slots, 2)), ("without", 0)):
            engine.reset_cache()
            engine.state_cache_slots = n_slots
            talks = {who: [{"role": "system", "content": f"You are {who}'s baking assistant. " + (
                "Remember: bread needs flour, water, salt and time. " * 12)}] for who in ("Alice", "Bob")}
            evaluated, prompts, seconds = [], [], []
            for turn in range(6):
                who = "Alice" if turn % 2 == 0 else "Bob"
                messages = talks[who]
                messages.append({"role": "user", "content": f"Question {turn // 2 + 1}: what should I bake next?"})
                options = ChatOptions(sampling=SamplingParams(max_tokens=24, temperature=0.0))
                text, _calls, st, _prompt = _chat_turn(runtime, messages, options)
                messages.append({"role": "assistant", "content": text})
                evaluated.append(st.prompt_eval_tokens)
                prompts.append(st.prompt_tokens)
                seconds.append(st.prompt_seconds)
            out[label] = {"prompt_tokens": prompts, "evaluated_tokens": evaluated, "prompt_s": seconds}
            say(f"  switching, {label.replace('_', ' ')}: evaluated {evaluated} of {prompts}")
    finally:
        engine.state_cache_slots = slots
        engine.reset_cache()
    return out


def _timed_generation(engine: Any, prompt: str, params: Any) -> tuple[list[str], Any]:
    from localtools.engine import GenerationStats

    stats = GenerationStats()  # the cache is kept: repeats of the prompt cost one token
    pieces = list(engine.generate(prompt, params, stats=stats))
    return pieces, stats


def _parse_seconds(runtime: Any, tools: list[dict[str, Any]], tail: str, pieces: list[str], repeats: int = 5) -> float:
    """Best time to feed `pieces` one by one through the dialect's streaming parser."""
    best = float("inf")
    for _ in range(repeats):
        parser = runtime.dialect.parser(tools, prompt_tail=tail, stream=True)
        start = time.perf_counter()
        for piece in pieces:
            parser.feed(piece)
        parser.finish()
        best = min(best, time.perf_counter() - start)
    return best


def bench_grammar_and_parser(runtime: Any, s: BenchSettings, say: Progress) -> dict[str, Any]:
    """Parts 3 and 4, in-process on the engine: constrained vs free decoding speed, and the
    streaming parser's cost per token as a share of the time to decode that token."""
    from localtools.engine import GrammarSpec, SamplingParams
    from localtools.service import PROMPT_TAIL_CHARS, ChatOptions, render_prompt

    engine = runtime.engine
    messages = [{"role": "system", "content": "You are a helpful assistant."},
                {"role": "user", "content": "Save a long note about bread, then check the weather in Oslo."}]
    prompt = render_prompt(runtime, messages, ChatOptions(tools=BENCH_TOOLS, tool_choice="required"))
    tail = prompt[-PROMPT_TAIL_CHARS:]
    plan = runtime.dialect.grammar(BENCH_TOOLS, "required", True, prompt_tail=tail)
    if plan is None:
        return {"grammar_ratio": None, "parser_share": None, "note": "this dialect has no grammar"}
    grammar = GrammarSpec(gbnf=plan.gbnf, lazy=plan.lazy, triggers=list(plan.triggers))
    stops = list(runtime.dialect.stop_strings())

    def params(with_grammar: bool) -> Any:
        # sampled (not greedy) so the constrained run writes a long call instead of closing at once
        return SamplingParams(max_tokens=s.grammar_tokens, temperature=0.8, seed=1234, stop=stops,
                              grammar=grammar if with_grammar else None)

    free_tps: list[float] = []
    con_tps: list[float] = []
    free_pieces: list[str] = []
    call_pieces: list[str] = []
    free_stats = con_stats = None
    for i in range(s.grammar_repeats):
        for constrained in ((False, True) if i % 2 == 0 else (True, False)):
            pieces, st = _timed_generation(engine, prompt, params(constrained))
            tps = st.completion_tokens / st.decode_seconds if st.decode_seconds > 0 else 0.0
            if constrained:
                con_tps.append(tps)
                call_pieces, con_stats = pieces, st
            else:
                free_tps.append(tps)
                free_pieces, free_stats = pieces, st
        say(f"  grammar {i + 1}/{s.grammar_repeats}: free {free_tps[-1]:.1f} tok/s, constrained {con_tps[-1]:.1f} tok/s")

    result: dict[str, Any] = {
        "free_decode_tps": _median(free_tps),
        "constrained_decode_tps": _median(con_tps),
        "grammar_ratio": _median([c / f for c, f in zip(con_tps, free_tps) if f]),
        "constrained_tokens": con_stats.completion_tokens if con_stats else 0,
        "free_tokens": free_stats.completion_tokens if free_stats else 0,
    }
    shares = {}
    for label, pieces, st in (("call", call_pieces, con_stats), ("text", free_pieces, free_stats)):
        if not pieces or st is None or not st.completion_tokens or st.decode_seconds <= 0:
            continue
        seconds = _parse_seconds(runtime, BENCH_TOOLS, tail, pieces)
        per_token_decode = st.decode_seconds / st.completion_tokens
        shares[label] = {
            "pieces": len(pieces),
            "parser_us_per_piece": seconds / len(pieces) * 1e6,
            "decode_us_per_token": per_token_decode * 1e6,
            "share": (seconds / len(pieces)) / per_token_decode,
        }
    result["parser"] = shares
    result["parser_share"] = max((v["share"] for v in shares.values()), default=None)
    return result


# ---------------------------------------------------------------- entry points


def default_threads() -> int:
    """The engine's default thread count: half the logical CPUs."""
    return max(1, (os.cpu_count() or 2) // 2)


def run_benchmark(
    model: str | None,
    *,
    quick: bool = False,
    settings: BenchSettings | None = None,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """Run every part on one model (None: the default model) and return the results.

    The server subprocess, the raw baseline and the in-process engine use the same model
    file, context size and thread count.
    """
    from localtools import __version__ as localtools_version
    from localtools.engine import llama_cpp_version
    from localtools.runtime import load_runtime

    s = settings or BenchSettings.for_mode(quick)
    say = progress or (lambda _msg: None)
    threads = s.threads or default_threads()
    started = time.perf_counter()

    say("loading the model in-process (prompt rendering, grammar and parser parts)")
    runtime = load_runtime(model, n_ctx=s.n_ctx, n_threads=threads, seed=0)
    result: dict[str, Any] = {
        "model": runtime.name,
        "model_file": str(runtime.model_path),
        "dialect": runtime.dialect.name,
        "llama_cpp_python": llama_cpp_version(),
        "localtools": localtools_version,
        "cpus": os.cpu_count(),
        "threads": threads,
        "quick": quick,
        "settings": {"max_tokens": s.max_tokens, "repeats": s.repeats, "turns": s.turns,
                     "grammar_tokens": s.grammar_tokens, "grammar_repeats": s.grammar_repeats, "n_ctx": s.n_ctx},
    }
    raw = None
    server = None
    try:
        say("starting localtools serve")
        server = ServerProcess(model, threads, s.n_ctx)
        result["serve_ready_s"] = server.ready_s
        say(f"  ready in {server.ready_s:.1f} s; loading raw llama-cpp-python")
        raw = RawBaseline(str(runtime.model_path), threads, s.n_ctx)
        say("part 1: server streaming vs raw create_completion")
        result["overhead"] = bench_overhead(runtime, server, raw, s, say)
        raw.close()
        raw = None
        result["peak_rss_mb"] = server.peak_rss_mb()
        server.close()
        server = None
        say("part 2: multi-turn tool conversation")
        result["conversation"] = bench_turns(runtime, s, say)
        say("part 2b: two conversations taking turns (KV state cache)")
        result["switching"] = bench_switching(runtime, say)
        say("parts 3-4: grammar vs free decoding; stream parser cost")
        result["grammar"] = bench_grammar_and_parser(runtime, s, say)
    finally:
        if raw is not None:
            raw.close()
        if server is not None:
            server.close()
        runtime.close()
    over, conv, gram = result["overhead"], result["conversation"], result["grammar"]
    result.update(
        decode_ratio=over["decode_ratio"],
        ttft_ratio=over["ttft_ratio"],
        turn_prompt_tokens=conv["turn_prompt_tokens"],
        turn_total_prompt_tokens=conv["turn_total_prompt_tokens"],
        grammar_ratio=gram.get("grammar_ratio"),
        parser_share=gram.get("parser_share"),
        seconds=time.perf_counter() - started,
    )
    return result


def _fmt(value: Any, spec: str) -> str:
    return "n/a" if value is None else format(value, spec)


def format_table(result: dict[str, Any]) -> str:
    """A plain-text report of `run_benchmark`'s result."""
    over, conv, gram = result["overhead"], result["conversation"], result["grammar"]
    lines = [
        f"localtools benchmark — {result['model']} ({Path(result['model_file']).name}), dialect {result['dialect']}",
        f"llama-cpp-python {result['llama_cpp_python']}, {result['cpus']} CPUs, {result['threads']} thread(s), "
        f"{'quick' if result['quick'] else 'full'} run, {result['seconds']:.0f} s",
        "",
        f"{'measure':42} {'localtools':>12} {'raw llama-cpp':>14} {'ratio':>7}",
        f"{'decode tok/s (streaming, 3 tools offered)':42} {over['server_decode_tps']:12.1f} "
        f"{over['raw_decode_tps']:14.1f} {over['decode_ratio']:7.3f}",
        f"{'time to first token, ms (' + str(over['prompt_tokens']) + '-token prompt)':42} "
        f"{over['server_ttft_s'] * 1000:12.0f} {over['raw_ttft_s'] * 1000:14.0f} {over['ttft_ratio']:7.3f}",
        "",
        f"{'turn':>4} {'kind':>7} {'prompt tokens':>14} {'added':>6} {'evaluated':>10} {'prompt ms':>10}",
    ]
    for row, added in zip(conv["turns"], conv["turn_added_tokens"]):
        lines.append(f"{row['turn']:4d} {row['kind']:>7} {row['prompt_tokens']:14d} {added:6d} "
                     f"{row['evaluated_tokens']:10d} {row['prompt_s'] * 1000:10.0f}")
    if conv.get("cold_last_prompt_tokens"):
        lines.append(f"{'last prompt from an empty cache':27} {conv['cold_last_prompt_tokens']:6d} "
                     f"{conv['cold_last_prompt_tokens']:10d} {conv['cold_last_prompt_s'] * 1000:10.0f}")
    switching = result.get("switching") or {}
    if switching:
        lines += ["", "two conversations taking turns (A B A B A B): prompt tokens evaluated, prompt ms"]
        for label, info in switching.items():
            pairs = ", ".join(f"{e}/{p} ({t * 1000:.0f})" for e, p, t in
                              zip(info["evaluated_tokens"], info["prompt_tokens"], info["prompt_s"]))
            lines.append(f"  {label.replace('_', ' '):18} {pairs}")
    lines += [
        "",
        f"{'grammar-constrained decode tok/s':42} {_fmt(gram.get('constrained_decode_tps'), '12.1f')}",
        f"{'free decode tok/s':42} {_fmt(gram.get('free_decode_tps'), '12.1f')}",
        f"{'grammar ratio (constrained / free)':42} {_fmt(gram.get('grammar_ratio'), '12.3f')}",
    ]
    for label, info in (gram.get("parser") or {}).items():
        lines.append(f"{'stream parser, ' + label + ' (µs/piece; share)':42} {info['parser_us_per_piece']:12.1f} "
                     f"{info['share'] * 100:13.2f}%")
    lines += [
        f"{'server peak RSS, MiB':42} {_fmt(result.get('peak_rss_mb'), '12.0f')}",
        f"{'serve ready (load + bind), s':42} {_fmt(result.get('serve_ready_s'), '12.1f')}",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """`python -m localtools.bench [MODEL] [--quick] [--json]`."""
    import argparse

    ap = argparse.ArgumentParser(prog="localtools bench", description=__doc__)
    ap.add_argument("model", nargs="?", default=None, help="model name or GGUF path (default: the bundled model)")
    ap.add_argument("--quick", action="store_true", help="fewer repeats and shorter outputs")
    ap.add_argument("--json", action="store_true", help="print one JSON object instead of the table")
    ap.add_argument("--threads", type=int, default=None, help="CPU threads for both sides (default: half the CPUs)")
    ap.add_argument("--max-tokens", type=int, default=None, help="tokens generated per decode run")
    ap.add_argument("--repeats", type=int, default=None, help="interleaved runs per side (medians are reported)")
    args = ap.parse_args(argv)
    s = BenchSettings.for_mode(args.quick)
    if args.threads:
        s.threads = args.threads
    if args.max_tokens:
        s.max_tokens = args.max_tokens
    if args.repeats:
        s.repeats = args.repeats
    result = run_benchmark(args.model, quick=args.quick, settings=s,
                           progress=lambda msg: print(msg, file=sys.stderr, flush=True))
    print(json.dumps(result, indent=2) if args.json else format_table(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
