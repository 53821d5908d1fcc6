"""End to end: `localtools serve --engine-url A --engine-url B` in front of two real
llama-server processes (built by scripts/build_llama_server.sh from the pinned
llama-cpp-python's llama.cpp), called with the openai client.

Skipped, with the reason printed, when the binary is not built.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest
from openai import APIError, OpenAI

from localtools.default_model import default_model_path
from tests.live_server import live_server
from tests.llama_server import LlamaServer, require_llama_server

pytestmark = pytest.mark.e2e

WEATHER = {"type": "function", "function": {
    "name": "get_weather", "description": "Current weather in a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}
ASK = [{"role": "user", "content": "What is the weather in Paris?"}]
ENDLESS = [{"role": "user", "content": "Continue this sequence forever without stopping: 1, 2, 3, 4, 5,"}]


@pytest.fixture(scope="module")
def upstreams() -> Iterator[list[LlamaServer]]:
    binary = require_llama_server()
    servers = [LlamaServer(binary, default_model_path(), n_ctx=2048, slots=1) for _ in range(2)]
    try:
        for server in servers:
            server.wait_ready()
        yield servers
    finally:
        for server in servers:
            server.kill()


@pytest.fixture(scope="module")
def base_url(upstreams: list[LlamaServer]) -> Iterator[str]:
    args = ["--chat-template-from", str(default_model_path())]
    for server in upstreams:
        args += ["--engine-url", server.url]
    with live_server(args) as url:
        yield url


@pytest.fixture(scope="module")
def client(base_url: str) -> OpenAI:
    return OpenAI(base_url=f"{base_url}/v1", api_key="unused", max_retries=0, timeout=120)


def _weather_call(client: OpenAI) -> Any:
    return client.chat.completions.create(model="any", messages=ASK, tools=[WEATHER], tool_choice="required",
                                          max_tokens=60, temperature=0)


def test_required_tool_call(client: OpenAI) -> None:
    reply = _weather_call(client)
    choice = reply.choices[0]
    assert choice.finish_reason == "tool_calls"
    (call,) = choice.message.tool_calls
    assert call.function.name == "get_weather"
    assert isinstance(json.loads(call.function.arguments).get("city"), str)
    assert choice.message.content is None
    assert reply.usage.prompt_tokens > 50 and 0 < reply.usage.completion_tokens <= 60


def test_auto_streaming_is_well_formed(client: OpenAI) -> None:
    stream = client.chat.completions.create(model="any", messages=ASK, tools=[WEATHER], tool_choice="auto",
                                            max_tokens=40, temperature=0, stream=True,
                                            stream_options={"include_usage": True})
    chunks = list(stream)
    assert chunks[0].choices[0].delta.role == "assistant"
    finishes = [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason]
    assert len(finishes) == 1 and finishes[0] in ("stop", "length", "tool_calls")
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    calls = [tc for c in chunks if c.choices for tc in (c.choices[0].delta.tool_calls or [])]
    assert text or calls
    assert chunks[-1].choices == [] and chunks[-1].usage.completion_tokens > 0


def _processing(server: LlamaServer) -> bool:
    slots = httpx.get(server.url + "/slots", timeout=5).json()
    return any(slot.get("is_processing") for slot in slots)


def test_an_upstream_killed_mid_test_loses_only_the_request_it_was_streaming(
    client: OpenAI, upstreams: list[LlamaServer]
) -> None:
    long_stream = client.chat.completions.create(model="any", messages=ENDLESS, max_tokens=1500, temperature=0,
                                                 stream=True)
    chunks = iter(long_stream)
    first = next(chunks)
    assert first.choices[0].delta.role == "assistant"
    while not (next(chunks).choices[0].delta.content or ""):  # text has come: past the point of a retry
        pass
    deadline = time.monotonic() + 30
    while not any(_processing(s) for s in upstreams) and time.monotonic() < deadline:
        time.sleep(0.2)
    victim = next(s for s in upstreams if _processing(s))
    survivor = next(s for s in upstreams if s is not victim)

    with ThreadPoolExecutor(4) as pool:  # more requests than the survivor's one slot: some queue on the victim
        futures = [pool.submit(_weather_call, client) for _ in range(4)]
        time.sleep(1.0)
        victim.kill()
        started = time.monotonic()
        with pytest.raises(APIError):  # the request in flight on it: a clean error, not a hang
            for _ in chunks:
                pass
        assert time.monotonic() - started < 30
        replies = [f.result(timeout=240) for f in futures]
    assert [r.choices[0].finish_reason for r in replies] == ["tool_calls"] * 4  # none of the others lost
    after = _weather_call(client)  # and the pool keeps serving from the survivor
    assert after.choices[0].finish_reason == "tool_calls"
    assert survivor.proc.poll() is None


def test_logprobs_come_from_the_upstream(client: OpenAI) -> None:
    reply = client.chat.completions.create(model="any", messages=ASK, max_tokens=12, temperature=0,
                                           logprobs=True, top_logprobs=2)
    choice = reply.choices[0]
    entries = choice.logprobs.content
    assert entries and len(entries) <= reply.usage.completion_tokens
    assert "".join(e.token for e in entries) == choice.message.content
    for entry in entries:
        assert entry.logprob <= 0.0 and len(entry.top_logprobs) == 2
        assert entry.top_logprobs[0].logprob >= entry.top_logprobs[1].logprob
        assert abs(entry.logprob - entry.top_logprobs[0].logprob) < 1e-4  # greedy: the best one
