"""A tool conversation only evaluates what each turn adds: the KV prefix is reused.

Functional only (no timings): the token counts the engine and the server report show that
turn N evaluates the tokens added since turn N-1 (plus a small re-render margin), never
the whole conversation again.
"""

from __future__ import annotations

import json
from typing import Any, Iterator

import pytest
from openai import OpenAI

from tests.live_server import live_server

pytestmark = pytest.mark.e2e

TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "get_weather",
            "description": "Current weather in a city",
            "parameters": {
                "type": "object",
                "properties": {"city": {"type": "string"}},
                "required": ["city"],
            },
        },
    },
    {
        "type": "function",
        "function": {
            "name": "search_web",
            "description": "Search the web",
            "parameters": {
                "type": "object",
                "properties": {"query": {"type": "string"}},
                "required": ["query"],
            },
        },
    },
]
QUESTIONS = ["What is the weather in Paris?", "Search the web for bread recipes.", "And the weather in Oslo?"]
RESULT = json.dumps({"temperature": 18, "sky": "cloudy"})
# Tokens a turn may evaluate beyond what it added: the end of the previous reply is
# re-rendered by the template (closing marker, a call rewritten in canonical form).
MARGIN = 8


def _turn_options(asking: bool) -> dict[str, Any]:
    # tool_choice "auto" (not "none") on answer turns keeps the tool prompt in the prompt
    return {"tool_choice": "required" if asking else "auto", "parallel_tool_calls": False,
            "max_tokens": 40, "temperature": 0.0}


def _append_reply(messages: list[dict[str, Any]], content: str | None, calls: list[dict[str, Any]]) -> None:
    if calls:
        messages.append({"role": "assistant", "content": content or None, "tool_calls": calls})
        messages.extend({"role": "tool", "tool_call_id": c["id"], "content": RESULT} for c in calls)
    else:
        messages.append({"role": "assistant", "content": content or ""})


def _check_turns(turns: list[tuple[int, int]]) -> None:
    """turns: (prompt_tokens, evaluated_tokens) per turn, in order."""
    assert len(turns) >= 4
    for n in range(1, len(turns)):
        prompt, evaluated = turns[n]
        added = prompt - turns[n - 1][0]
        assert added > 0, turns
        assert 0 < evaluated <= added + MARGIN, f"turn {n + 1} evaluated {evaluated} of {prompt} ({added} added): {turns}"
    last_prompt, last_evaluated = turns[-1]
    assert last_evaluated < last_prompt // 2, turns


# ---------------------------------------------------------------- through the service (engine stats)


@pytest.fixture(scope="module")
def runtime() -> Iterator[Any]:
    from localtools.runtime import load_runtime

    rt = load_runtime(None, n_ctx=4096)
    yield rt
    rt.close()


def _service_turn(rt: Any, messages: list[dict[str, Any]], asking: bool) -> tuple[str, list[dict[str, Any]], Any, str]:
    from localtools.dialects import ArgsDelta, CallStart, ContentDelta
    from localtools.engine import SamplingParams
    from localtools.service import ChatOptions, Finish, start_chat

    opts = _turn_options(asking)
    options = ChatOptions(
        tools=TOOLS, tool_choice=opts["tool_choice"], parallel_tool_calls=False,
        sampling=SamplingParams(max_tokens=opts["max_tokens"], temperature=0.0),
    )
    run = start_chat(rt, messages, options)
    text, calls, stats = [], {}, None
    for item in run:
        if isinstance(item, ContentDelta):
            text.append(item.text)
        elif isinstance(item, CallStart):
            calls[item.index] = {"id": item.id, "type": "function", "function": {"name": item.name, "arguments": ""}}
        elif isinstance(item, ArgsDelta):
            calls[item.index]["function"]["arguments"] += item.text
        elif isinstance(item, Finish):
            stats = item.stats
    assert stats is not None
    return "".join(text), [calls[i] for i in sorted(calls)], stats, run.prompt


def test_engine_reuses_the_prefix_across_a_tool_conversation(runtime: Any) -> None:
    runtime.scheduler.call(lambda engine: engine.reset_cache())
    messages: list[dict[str, Any]] = [{"role": "system", "content": "You are a terse assistant."}]
    turns: list[tuple[int, int]] = []
    saw_call = False
    prompt = ""
    for n in range(6):
        asking = n % 2 == 0
        if asking:
            messages.append({"role": "user", "content": QUESTIONS[n // 2]})
        text, calls, stats, prompt = _service_turn(runtime, messages, asking)
        assert stats.cached_tokens + stats.prompt_eval_tokens == stats.prompt_tokens
        turns.append((stats.prompt_tokens, stats.prompt_eval_tokens))
        saw_call = saw_call or bool(calls)
        for i, call in enumerate(calls):
            call["id"] = call["id"] or f"call_{n}_{i}"
        _append_reply(messages, text, calls)
    assert saw_call, "tool_choice=required must have produced calls"
    assert turns[0][1] == turns[0][0], "from an empty cache the whole prompt is evaluated"
    _check_turns(turns)
    # the cache now starts with the whole last prompt
    tokens = runtime.scheduler.call(lambda engine: engine.tokenize_prompt(prompt))
    cached = runtime.scheduler.call(lambda engine: engine.cached_tokens)
    assert cached[: len(tokens)] == tokens


def test_an_unrelated_conversation_is_evaluated_from_where_it_differs(runtime: Any) -> None:
    """The reported reuse is real: a prompt differing early gets little from the cache."""
    from localtools.engine import SamplingParams
    from localtools.service import ChatOptions, start_chat

    def stats_for(system: str) -> Any:
        messages = [{"role": "system", "content": system}, {"role": "user", "content": "Say hello."}]
        run = start_chat(runtime, messages, ChatOptions(sampling=SamplingParams(max_tokens=4, temperature=0.0)))
        for _ in run:
            pass
        return run.stats

    first = stats_for("Alpha bravo charlie delta echo foxtrot golf hotel india juliet.")
    again = stats_for("Alpha bravo charlie delta echo foxtrot golf hotel india juliet.")
    other = stats_for("Zulu yankee x-ray whiskey victor uniform tango sierra romeo.")
    assert again.prompt_tokens == first.prompt_tokens
    assert again.prompt_eval_tokens <= 2  # the same prompt: only the last token again
    assert other.prompt_eval_tokens >= other.prompt_tokens - 5  # differs right after "system\n"


# ---------------------------------------------------------------- through the server (usage)


@pytest.fixture(scope="module")
def client() -> Iterator[OpenAI]:
    with live_server(["--n-ctx", "4096"]) as url:
        yield OpenAI(base_url=f"{url}/v1", api_key="unused", max_retries=0, timeout=120)


def test_server_reports_cached_prompt_tokens_across_turns(client: OpenAI) -> None:
    messages: list[dict[str, Any]] = [{"role": "system", "content": "You answer with tools. Session 41."}]
    turns: list[tuple[int, int]] = []
    for n in range(6):
        asking = n % 2 == 0
        if asking:
            messages.append({"role": "user", "content": QUESTIONS[n // 2]})
        reply = client.chat.completions.create(model="any", messages=messages, tools=TOOLS, **_turn_options(asking))
        usage = reply.usage
        assert usage is not None and usage.prompt_tokens_details is not None
        cached = usage.prompt_tokens_details.cached_tokens or 0
        turns.append((usage.prompt_tokens, usage.prompt_tokens - cached))
        msg = reply.choices[0].message
        calls = [{"id": c.id, "type": "function", "function": {"name": c.function.name, "arguments": c.function.arguments}}
                 for c in msg.tool_calls or []]
        _append_reply(messages, msg.content, calls)
    _check_turns(turns)


def test_streamed_usage_reports_cached_tokens(client: OpenAI) -> None:
    messages = [{"role": "system", "content": "You answer with tools. Session 42."},
                {"role": "user", "content": QUESTIONS[0]}]
    usages = []
    for _ in range(2):  # the same request twice: the second reuses the first's prompt
        stream = client.chat.completions.create(
            model="any", messages=messages, tools=TOOLS, stream=True, stream_options={"include_usage": True},
            **_turn_options(True),
        )
        usages.append([chunk.usage for chunk in stream if chunk.usage is not None][-1])
    first, second = usages
    assert second.prompt_tokens == first.prompt_tokens
    # all but the smallest exact chunk: 64 tokens for a prompt of 64+ with flash attention
    # (the default), 2 without (engine/kv_cache.py); the 64 include the text a grammar forces
    # after the prompt, which usage does not count as prompt
    assert second.prompt_tokens > 64
    assert second.prompt_tokens_details.cached_tokens >= second.prompt_tokens - 64
    assert first.prompt_tokens_details.cached_tokens < first.prompt_tokens


# ---------------------------------------------------------------- two conversations taking turns


def _conversation(who: str, turns: int) -> str:
    text = f"<|im_start|>system\nYou are talking to {who}. " + "Bread needs flour, water and salt. " * 12 + "<|im_end|>\n"
    for i in range(turns):
        text += f"<|im_start|>user\nQuestion {i} from {who}?<|im_end|>\n<|im_start|>assistant\nAnswer {i}.<|im_end|>\n"
    return text + "<|im_start|>user\nAnd now?<|im_end|>\n<|im_start|>assistant\n"


def test_switching_conversations_restores_the_saved_state(model_path: Any) -> None:
    """With the state cache, going back to a conversation evaluates only its new turn, and
    generates exactly what an engine without the cache generates."""
    from localtools.engine import Engine, EngineConfig, GenerationStats, SamplingParams

    results = {}
    for slots in (4, 0):
        engine = Engine(EngineConfig(model_path=str(model_path), n_ctx=2048, state_cache_slots=slots))
        try:
            rows = []
            for turn, who in enumerate(["Alice", "Bob", "Alice", "Bob"]):
                stats = GenerationStats()
                text = "".join(engine.generate(_conversation(who, turn), SamplingParams(max_tokens=6, temperature=0.0),
                                               stats=stats))
                rows.append((text, stats.prompt_tokens, stats.prompt_eval_tokens))
            results[slots] = rows
        finally:
            engine.close()
    with_cache, without = results[4], results[0]
    assert [r[0] for r in with_cache] == [r[0] for r in without]  # same text either way
    for (_, prompt, evaluated), (_, _, evaluated_cold) in zip(with_cache[2:], without[2:]):
        assert evaluated_cold >= prompt - 8  # without the cache: almost everything again
        assert evaluated < prompt // 2  # with it: only what the turn added


def test_more_conversations_than_state_slots(model_path: Any) -> None:
    """Cycling through more conversations than saved-state slots evicts the oldest state
    (also the one about to be restored) without failing, and output stays the same."""
    from localtools.engine import Engine, EngineConfig, GenerationStats, SamplingParams

    texts = {}
    for slots in (1, 0):
        engine = Engine(EngineConfig(model_path=str(model_path), n_ctx=2048, state_cache_slots=slots))
        try:
            out = []
            for turn, who in enumerate(["Alice", "Bob", "Alice", "Carol", "Bob", "Carol", "Carol"]):
                stats = GenerationStats()
                out.append("".join(engine.generate(_conversation(who, turn), SamplingParams(max_tokens=4, temperature=0.0),
                                                   stats=stats)))
                assert len(engine.saved_states) <= slots
            texts[slots] = out
        finally:
            engine.close()
    assert texts[1] == texts[0]
