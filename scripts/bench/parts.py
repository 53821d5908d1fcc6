"""The measured parts: server overhead against raw llama-cpp-python, prefix reuse over a
tool conversation, two conversations taking turns, grammar cost and stream parser cost.
"""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

from .common import (
    BENCH_TOOLS,
    STORY_REQUEST,
    TURN_QUESTIONS,
    BenchSettings,
    Progress,
    StreamSample,
    median,
)
from .sides import RawBaseline, ServerProcess, stream_chat


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
        "server_decode_tps": median([r.decode_tps for r in server_runs]),
        "raw_decode_tps": median([r.decode_tps for r in raw_runs]),
        "decode_ratio": median([a.decode_tps / b.decode_tps for a, b in pairs if b.decode_tps]),
        "server_ttft_s": median([r.ttft_s for r in server_runs]),
        "raw_ttft_s": median([r.ttft_s for r in raw_runs]),
        "ttft_ratio": median([a.ttft_s / b.ttft_s for a, b in pairs if b.ttft_s]),
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
    from localtools.engine import SamplingParams
    from localtools.service import PROMPT_TAIL_CHARS, ChatOptions, render_prompt

    engine = runtime.engine
    messages = [{"role": "system", "content": "You are a helpful assistant."},
                {"role": "user", "content": "Save a long note about bread, then check the weather in Oslo."}]
    prompt = render_prompt(runtime, messages, ChatOptions(tools=BENCH_TOOLS, tool_choice="required"))
    tail = prompt[-PROMPT_TAIL_CHARS:]
    grammar = runtime.dialect.grammar(BENCH_TOOLS, "required", True, prompt_tail=tail)
    if grammar is None:
        return {"grammar_ratio": None, "parser_share": None, "note": "this dialect has no grammar"}
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
        "free_decode_tps": median(free_tps),
        "constrained_decode_tps": median(con_tps),
        "grammar_ratio": median([c / f for c, f in zip(con_tps, free_tps) if f]),
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
