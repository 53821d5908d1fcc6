"""The vLLM client against a recorded exchange (request shape from vLLM's docs), served
by a local replay engine: what localtools sends, and what it makes of the reply.

The tokenizer and template are the default model's (vocabulary only, no weights), so
these run in seconds; the engine side is `tests/replay_engine.py`.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from localtools.backends import BackendUnavailable
from localtools.default_model import default_model_path
from localtools.dialects import ArgsDelta, CallStart
from localtools.engine import ContextLengthExceeded, SamplingParams
from localtools.remote import load_remote_runtime
from localtools.service import ChatOptions, Finish, start_chat
from tests.replay_engine import ReplayEngine, recording

WEATHER = {"type": "function", "function": {"name": "get_weather", "parameters": {
    "type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}
ASK = [{"role": "user", "content": "What is the weather in Paris?"}]


def _runtime(*urls: str) -> Any:
    return load_remote_runtime(list(urls), str(default_model_path()), health_interval=60.0)


@pytest.fixture()
def engine() -> Iterator[ReplayEngine]:
    with ReplayEngine() as replay:
        yield replay


def _chat(runtime: Any, choice: str) -> list[Any]:
    options = ChatOptions(tools=[WEATHER], tool_choice=choice, sampling=SamplingParams(max_tokens=60, temperature=0.0))
    return list(start_chat(runtime, ASK, options))


def test_detects_vllm_and_takes_its_context_window(engine: ReplayEngine) -> None:
    runtime = _runtime(engine.url)
    try:
        (up,) = runtime.scheduler.pool.describe()
        assert (up["kind"], up["healthy"], up["n_ctx"]) == ("vllm", True, 2048)
        assert runtime.n_ctx == 2048
    finally:
        runtime.close()


def test_required_call_request_uses_only_documented_fields_and_sends_the_grammar(engine: ReplayEngine) -> None:
    runtime = _runtime(engine.url)
    try:
        items = _chat(runtime, "required")
    finally:
        runtime.close()
    (body,) = engine.requests
    rec = recording()
    assert set(body) <= set(rec["documented_request_fields"]), set(body) - set(rec["documented_request_fields"])
    for key, value in rec["request"].items():
        assert body[key] == value, key
    assert set(body["structured_outputs"]) == {"grammar"}
    assert body["structured_outputs"]["grammar"].startswith("root ::=")
    assert 'get_weather' in body["structured_outputs"]["grammar"]
    # the prompt is the template's rendering, as text (vLLM tokenizes it; nothing added)
    assert body["prompt"].startswith("<|im_start|>system") and body["prompt"].endswith("<|im_start|>assistant\n")

    starts = [i for i in items if isinstance(i, CallStart)]
    args = "".join(i.text for i in items if isinstance(i, ArgsDelta))
    finish = items[-1]
    assert [s.name for s in starts] == ["get_weather"]
    assert args == '{"city": "Paris"}'
    assert isinstance(finish, Finish) and finish.finish_reason == "tool_calls"
    assert finish.stats.completion_tokens == 20  # from the usage chunk
    assert finish.stats.cached_tokens == 176  # prompt_tokens_details.cached_tokens
    assert finish.stats.prompt_tokens == len(runtime.engine.tokenize_prompt(body["prompt"]))


def test_auto_sends_no_grammar_since_vllm_has_no_lazy_one(engine: ReplayEngine) -> None:
    runtime = _runtime(engine.url)
    try:
        items = _chat(runtime, "auto")
    finally:
        runtime.close()
    (body,) = engine.requests
    assert "structured_outputs" not in body
    assert [i.name for i in items if isinstance(i, CallStart)] == ["get_weather"]  # parsed from free text
    assert items[-1].finish_reason == "tool_calls"


def test_context_error_is_the_engines_context_length_exceeded() -> None:
    with ReplayEngine(mode="context") as replay:
        runtime = _runtime(replay.url)
        try:
            with pytest.raises(ContextLengthExceeded):
                _chat(runtime, "required")
        finally:
            runtime.close()


def test_failure_before_the_first_token_is_retried_on_the_next_upstream() -> None:
    with ReplayEngine(mode="fail") as broken, ReplayEngine() as good:
        runtime = _runtime(broken.url, good.url)
        try:
            results = [_chat(runtime, "required")[-1].finish_reason for _ in range(3)]
            states = {u["url"]: u["healthy"] for u in runtime.scheduler.pool.describe()}
        finally:
            runtime.close()
    assert results == ["tool_calls"] * 3
    assert len(broken.requests) == 1  # tried once, then out of rotation
    assert len(good.requests) == 3
    assert states == {broken.url: False, good.url: True}


def test_every_upstream_failing_is_backend_unavailable() -> None:
    with ReplayEngine(mode="fail") as one, ReplayEngine(mode="fail") as two:
        runtime = _runtime(one.url, two.url)
        try:
            with pytest.raises(BackendUnavailable):
                _chat(runtime, "required")
        finally:
            runtime.close()
    assert len(one.requests) == len(two.requests) == 1


def test_death_mid_stream_ends_the_stream_with_an_error_not_a_hang() -> None:
    with ReplayEngine(mode="die") as dying, ReplayEngine() as good:
        runtime = _runtime(dying.url)
        try:
            handle = runtime.scheduler.submit("<|im_start|>user\nhi<|im_end|>\n", SamplingParams(max_tokens=20))
            pieces: list[str] = []
            with pytest.raises(BackendUnavailable, match="mid-stream"):
                for piece in handle:
                    pieces.append(piece)
            assert pieces == ["<tool_call>", "\n"]  # what came before the drop, nothing repeated
            assert handle.wait(5)
        finally:
            runtime.close()
        assert good.requests == []  # a stream that started is never retried elsewhere


def test_embeddings_are_refused_with_the_reason(engine: ReplayEngine) -> None:
    from localtools.engine import EngineError

    runtime = _runtime(engine.url)
    try:
        with pytest.raises(EngineError, match="--engine-url"):
            runtime.embedder()
    finally:
        runtime.close()
