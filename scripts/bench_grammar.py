"""Decode speed with and without tool grammars, on one model, one prompt, one run.

    .venv/bin/python scripts/bench_grammar.py [--model PATH] [--repeats 3] [--tokens 96] [--json]

Two ratios (goals: ≥ 0.9 and ≥ 0.8):
  strict: tool_choice "required" over 5 tools (a strict grammar from the first
          token) vs the same prompt generated freely;
  lazy:   50 tools with tool_choice "auto" (a lazy grammar waiting for its
          trigger) vs the same prompt generated freely.
Decode tokens/s comes from the engine's own stats (completion_tokens /
decode_seconds); grammar construction (dialect GBNF + llama.cpp parse) is
timed apart, since it is paid once per request before the first token.
The prompt is rendered once per pair, so both sides decode after the same context.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from localtools.engine import SamplingParams  # noqa: E402
from localtools.gbnf import Grammar  # noqa: E402
from localtools.runtime import ModelRuntime, load_runtime  # noqa: E402
from localtools.service import ChatOptions, render_prompt  # noqa: E402

PROPS = [
    {"city": {"type": "string"}, "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]}},
    {"query": {"type": "string"}, "limit": {"type": "integer", "minimum": 1, "maximum": 20}},
    {"title": {"type": "string"}, "when": {"type": "object", "properties": {"date": {"type": "string"}}}},
    {"tags": {"type": "array", "items": {"type": "string"}, "maxItems": 4}, "on": {"type": "boolean"}},
    {"x": {"type": "number"}, "y": {"type": "number"}, "note": {"type": "string"}},
]


def make_tools(n: int) -> list[dict[str, Any]]:
    tools = []
    for i in range(n):
        props = PROPS[i % len(PROPS)]
        tools.append({"type": "function", "function": {
            "name": f"tool_{i}", "description": f"Tool number {i}: does task {i}.",
            "parameters": {"type": "object", "properties": props, "required": [next(iter(props))]},
        }})
    return tools


def decode_rate(runtime: ModelRuntime, prompt: str, grammar: Grammar | None, tokens: int) -> tuple[float, int, str]:
    """(decode tokens/s, tokens generated, text) of one generation after a warm prompt."""
    params = SamplingParams(max_tokens=tokens, temperature=0.0, grammar=grammar)
    text = "".join(runtime.engine.generate(prompt, params))
    st = runtime.engine.last_stats
    rate = st.completion_tokens / st.decode_seconds if st.decode_seconds > 0 else 0.0
    return rate, st.completion_tokens, text


def grammar_for(runtime: ModelRuntime, prompt: str, tools: list[dict[str, Any]], choice: str) -> tuple[Grammar, float]:
    """The request's grammar as start_chat builds it, and the seconds to build and parse it."""
    t0 = time.perf_counter()
    spec = runtime.dialect.grammar(tools, choice, True, prompt_tail=prompt[-200:])
    assert spec is not None, f"{runtime.dialect.name} gives no grammar for {choice!r}"
    runtime.engine.compile_grammar(spec).free()  # what generate() pays before the first token
    return spec, time.perf_counter() - t0


def pair(runtime: ModelRuntime, n_tools: int, choice: str, user: str, repeats: int, tokens: int) -> dict[str, Any]:
    tools = make_tools(n_tools)
    messages = [{"role": "user", "content": user}]
    prompt = render_prompt(runtime, messages, ChatOptions(tools=tools, tool_choice=choice))
    grammar, setup_s = grammar_for(runtime, prompt, tools, choice)
    free_rates, constrained_rates, counts = [], [], []
    decode_rate(runtime, prompt, None, 8)  # warm: the prompt is in the KV cache for both sides
    for _ in range(repeats):
        r, n, _ = decode_rate(runtime, prompt, None, tokens)
        free_rates.append(r)
        r2, n2, text = decode_rate(runtime, prompt, grammar, tokens)
        constrained_rates.append(r2)
        counts.append((n, n2))
    free, constrained = statistics.median(free_rates), statistics.median(constrained_rates)
    return {
        "tools": n_tools,
        "tool_choice": choice,
        "grammar": "lazy" if grammar.lazy else "strict",
        "gbnf_chars": len(grammar.gbnf),
        "grammar_setup_ms": round(setup_s * 1000, 1),
        "prompt_tokens": runtime.engine.last_stats.prompt_tokens,
        "free_tok_s": round(free, 1),
        "constrained_tok_s": round(constrained, 1),
        "ratio": round(constrained / free, 3) if free else None,
        "tokens_free_constrained": counts,
        "constrained_sample": text[:120],
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default=None, help="GGUF path or catalog name (default: the default model)")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--tokens", type=int, default=96)
    ap.add_argument("--json", action="store_true", help="print one JSON object")
    args = ap.parse_args()

    runtime = load_runtime(args.model, n_ctx=4096)
    try:
        results = {
            "model": runtime.name,
            "dialect": runtime.dialect.name,
            "strict": pair(runtime, 5, "required", "Look up the weather in Paris.", args.repeats, args.tokens),
            "lazy": pair(runtime, 50, "auto", "Tell me a long story about a dragon.", args.repeats, args.tokens),
        }
    finally:
        runtime.close()
    results["goals"] = {
        "strict_ratio_ge_0.9": (results["strict"]["ratio"] or 0) >= 0.9,
        "lazy_ratio_ge_0.8": (results["lazy"]["ratio"] or 0) >= 0.8,
    }
    if args.json:
        print(json.dumps(results, indent=2))
        return
    print(f"model {results['model']} (dialect {results['dialect']}), median of {args.repeats}, decode tokens/s")
    for key, goal in (("strict", 0.9), ("lazy", 0.8)):
        r = results[key]
        print(
            f"  {key:6} {r['tools']:2} tools {r['tool_choice']:8}: free {r['free_tok_s']:7.1f}  "
            f"constrained {r['constrained_tok_s']:7.1f}  ratio {r['ratio']:.3f} (goal >= {goal})  "
            f"grammar {r['gbnf_chars']} chars, setup {r['grammar_setup_ms']} ms"
        )


if __name__ == "__main__":
    main()
