"""Running every part on one model, and the command line (`python scripts/bench.py`).
"""

from __future__ import annotations

import json
import os
import sys
import time
from typing import Any

from .common import BenchSettings, Progress
from .parts import (
    bench_grammar_and_parser,
    bench_overhead,
    bench_switching,
    bench_turns,
)
from .report import format_table
from .sides import RawBaseline, ServerProcess


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


def main(argv: list[str] | None = None) -> int:
    """`python scripts/bench.py [MODEL] [--quick] [--json]` (also `localtools bench` in a checkout)."""
    import argparse

    ap = argparse.ArgumentParser(prog="bench.py", description="Benchmark localtools against raw llama-cpp-python on one model.")
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
