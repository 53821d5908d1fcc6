"""Ollama's API end to end: the `ollama` Python client against a live server.

Real engine, default weights. Ollama has no tool_choice; this server takes one
in `options` (an extension), so forced calls are grammar-constrained here too.
"""

from __future__ import annotations

from typing import Any, Iterator

import httpx
import ollama
import pytest

from tests.live_server import live_server

pytestmark = pytest.mark.e2e

TOOL = {"type": "function", "function": {
    "name": "get_weather", "description": "Current weather in a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string", "maxLength": 20}}, "required": ["city"]}}}
ASK = [{"role": "user", "content": "What is the weather in Paris?"}]
OPTIONS = {"temperature": 0, "num_predict": 60}
FORCED = {**OPTIONS, "tool_choice": "required"}


@pytest.fixture(scope="module")
def served() -> Iterator[tuple[str, ollama.Client]]:
    with live_server([]) as base_url:
        yield base_url, ollama.Client(host=base_url, timeout=120)


def test_text_chat_and_listing(served: tuple[str, ollama.Client]) -> None:
    _, client = served
    reply = client.chat(model="smol", messages=[{"role": "user", "content": "Say hello."}], options=OPTIONS)
    assert reply.done and reply.message.role == "assistant" and isinstance(reply.message.content, str)
    assert reply.prompt_eval_count > 0 and reply.eval_count > 0 and reply.done_reason in ("stop", "length")
    models = client.list().models
    assert len(models) == 1 and models[0].size > 0 and models[0].details.format == "gguf"
    shown = client.show(models[0].model)
    assert "tools" in shown.capabilities and shown.template


def test_forced_tool_call_stream_equals_non_stream(served: tuple[str, ollama.Client]) -> None:
    _, client = served
    client.chat(model="smol", messages=ASK, tools=[TOOL], options={**FORCED, "num_predict": 1})  # warm the cache
    whole = client.chat(model="smol", messages=ASK, tools=[TOOL], options=FORCED)
    calls = whole.message.tool_calls
    assert calls and all(c.function.name == "get_weather" and isinstance(c.function.arguments["city"], str) for c in calls)
    pieces = list(client.chat(model="smol", messages=ASK, tools=[TOOL], options=FORCED, stream=True))
    streamed = [c for p in pieces for c in p.message.tool_calls or []]
    assert [(c.function.name, dict(c.function.arguments)) for c in streamed] == \
        [(c.function.name, dict(c.function.arguments)) for c in calls]
    assert "".join(p.message.content or "" for p in pieces) == whole.message.content
    assert pieces[-1].done and not any(p.done for p in pieces[:-1])


def test_text_stream_equals_non_stream_and_generate(served: tuple[str, ollama.Client]) -> None:
    _, client = served
    ask = [{"role": "user", "content": "Name a color."}]
    client.chat(model="smol", messages=ask, options={**OPTIONS, "num_predict": 1})
    whole = client.chat(model="smol", messages=ask, options=OPTIONS)
    pieces = list(client.chat(model="smol", messages=ask, options=OPTIONS, stream=True))
    assert "".join(p.message.content for p in pieces) == whole.message.content
    gen = client.generate(model="smol", prompt="Name a color.", options={**OPTIONS, "num_predict": 5})
    assert gen.done and isinstance(gen.response, str) and gen.eval_count <= 5


def test_tool_result_round_trip(served: tuple[str, ollama.Client]) -> None:
    _, client = served
    first = client.chat(model="smol", messages=ASK, tools=[TOOL], options=FORCED)
    history: list[Any] = ASK + [first.message, {"role": "tool", "tool_name": "get_weather", "content": "Sunny"}]
    second = client.chat(model="smol", messages=history, tools=[TOOL], options=OPTIONS)
    assert second.done and second.message.role == "assistant"


@pytest.mark.parametrize("body, words", [
    ({"model": "smol", "messages": [{"role": "tool", "content": "x"}]}, "answers no"),
    ({"model": "smol", "messages": [{"role": "user", "content": "x", "images": ["aGk="]}]}, "text-only"),
    ({"model": "smol", "messages": ASK, "options": {"temperature": "warm"}}, "options.temperature"),
    ({"model": "smol", "messages": "hello"}, "messages"),
])
def test_bad_input_gets_ollama_400(served: tuple[str, ollama.Client], body: dict[str, Any], words: str) -> None:
    base_url, client = served
    r = httpx.post(f"{base_url}/api/chat", json=body, timeout=60)
    assert r.status_code == 400 and set(r.json()) == {"error"} and words in r.json()["error"], r.text
    with pytest.raises(ollama.ResponseError) as info:
        client.chat(model="smol", messages=[{"role": "user", "content": "x", "images": ["aGk="]}])
    assert info.value.status_code == 400
    assert httpx.get(f"{base_url}/api/version", timeout=10).json()["version"]
