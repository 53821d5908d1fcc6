"""/v1/messages end to end: the `anthropic` SDK against a live server (x-api-key auth).

Real engine, default weights: forced calls (`any`, a named tool) are
grammar-constrained, so they are asserted on structure, never wisdom.
"""

from __future__ import annotations

import json
from typing import Any, Iterator

import anthropic
import httpx
import pytest

from tests.live_server import live_server

pytestmark = pytest.mark.e2e

KEY = "messages-key"
WEATHER = {"name": "get_weather", "description": "Current weather in a city",
           "input_schema": {"type": "object", "properties": {"city": {"type": "string", "maxLength": 20}},
                            "required": ["city"]}}
TIME = {"name": "get_time", "description": "Current time in a city",
        "input_schema": {"type": "object", "properties": {"city": {"type": "string", "maxLength": 20}},
                         "required": ["city"]}}
ASK = [{"role": "user", "content": "What is the weather in Paris?"}]
# this SDK version has no `temperature` argument: greedy decoding goes in the body as is
BASE: dict[str, Any] = {"model": "smol", "max_tokens": 60, "extra_body": {"temperature": 0}}


@pytest.fixture(scope="module")
def served() -> Iterator[tuple[str, anthropic.Anthropic]]:
    with live_server(["--api-key", KEY]) as base_url:
        yield base_url, anthropic.Anthropic(base_url=base_url, api_key=KEY, max_retries=0, timeout=120)


def test_text_reply(served: tuple[str, anthropic.Anthropic]) -> None:
    _, client = served
    msg = client.messages.create(messages=[{"role": "user", "content": "Say hello."}], system="Be brief.", **BASE)
    assert msg.type == "message" and msg.role == "assistant" and msg.id.startswith("msg_")
    assert msg.content[0].type == "text" and msg.stop_reason in ("end_turn", "max_tokens")
    assert msg.usage.input_tokens > 0 and msg.usage.output_tokens > 0


@pytest.mark.parametrize("choice", [{"type": "any"}, {"type": "tool", "name": "get_time"}])
def test_forced_tool_use_is_valid(served: tuple[str, anthropic.Anthropic], choice: dict[str, Any]) -> None:
    _, client = served
    msg = client.messages.create(messages=ASK, tools=[WEATHER, TIME], tool_choice={**choice, "disable_parallel_tool_use": True},
                                 **BASE)
    uses = [b for b in msg.content if b.type == "tool_use"]
    assert uses and msg.stop_reason == "tool_use"
    if choice["type"] == "tool":
        assert {u.name for u in uses} == {"get_time"}
    for use in uses:
        assert isinstance(use.input.get("city"), str) and use.id


def _summary(msg: Any) -> list[tuple[str, Any]]:
    return [(b.type, b.text if b.type == "text" else (b.name, b.input)) for b in msg.content] + [("stop", msg.stop_reason)]


@pytest.mark.parametrize("tools", [False, True])
def test_stream_equals_non_stream(served: tuple[str, anthropic.Anthropic], tools: bool) -> None:
    _, client = served
    body: dict[str, Any] = dict(messages=ASK, **BASE)
    if tools:
        body.update(tools=[WEATHER], tool_choice={"type": "any", "disable_parallel_tool_use": True})
    client.messages.create(**{**body, "max_tokens": 1})  # warm the KV cache (see test_streaming_e2e)
    whole = client.messages.create(**body)
    partial_json = ""
    kinds = []
    with client.messages.stream(**body) as stream:
        for event in stream:
            kinds.append(event.type)
            if event.type == "content_block_delta" and event.delta.type == "input_json_delta":
                partial_json += event.delta.partial_json
        final = stream.get_final_message()
    assert kinds[0] == "message_start" and kinds[-1] == "message_stop"
    assert _summary(final) == _summary(whole)
    assert final.usage.output_tokens == whole.usage.output_tokens
    if tools:
        assert json.loads(partial_json) == final.content[-1].input


def test_tool_result_round_trip_and_count_tokens(served: tuple[str, anthropic.Anthropic]) -> None:
    _, client = served
    first = client.messages.create(messages=ASK, tools=[WEATHER], tool_choice={"type": "any"}, **BASE)
    use = next(b for b in first.content if b.type == "tool_use")
    history = ASK + [{"role": "assistant", "content": [b.model_dump(exclude_none=True) for b in first.content]},
                     {"role": "user", "content": [{"type": "tool_result", "tool_use_id": use.id, "content": "Sunny"}]}]
    second = client.messages.create(messages=history, tools=[WEATHER], **BASE)
    assert second.content and second.stop_reason in ("end_turn", "max_tokens", "tool_use")
    counted = client.messages.count_tokens(model="smol", messages=history, tools=[WEATHER])
    assert counted.input_tokens > client.messages.count_tokens(model="smol", messages=ASK).input_tokens > 0


def _post(base_url: str, body: dict[str, Any], key: str = KEY) -> httpx.Response:
    return httpx.post(f"{base_url}/v1/messages", json=body, timeout=60,
                      headers={"x-api-key": key, "anthropic-version": "2023-06-01"})


@pytest.mark.parametrize("body, words", [
    ({"model": "smol", "messages": ASK}, "max_tokens"),
    ({"model": "smol", "max_tokens": "ten", "messages": ASK}, "max_tokens"),
    ({"model": "smol", "max_tokens": 5, "messages": [{"role": "user", "content": [
        {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "aGk="}}]}]}, "text-only"),
    ({"model": "smol", "max_tokens": 5, "messages": [{"role": "user", "content": [
        {"type": "tool_result", "tool_use_id": "toolu_x", "content": "x"}]}]}, "tool_use_id"),
    ({"model": "smol", "max_tokens": 5, "messages": ASK, "tools": [{"type": "web_search_20250305", "name": "web_search"}]},
     "tools[0].type"),
])
def test_bad_input_gets_anthropic_400(served: tuple[str, anthropic.Anthropic], body: dict[str, Any], words: str) -> None:
    base_url, _ = served
    r = _post(base_url, body)
    assert r.status_code == 400, r.text
    err = r.json()
    assert err["type"] == "error" and err["error"]["type"] == "invalid_request_error"
    assert words in err["error"]["message"]


def test_sdk_errors_and_wrong_key(served: tuple[str, anthropic.Anthropic]) -> None:
    base_url, client = served
    with pytest.raises(anthropic.BadRequestError):
        client.messages.create(messages=[{"role": "user", "content": [
            {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "aGk="}}]}], **BASE)
    r = _post(base_url, {**BASE, "messages": ASK}, key="wrong")
    assert r.status_code == 401 and r.json()["error"]["type"] == "authentication_error"
