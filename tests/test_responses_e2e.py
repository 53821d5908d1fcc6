"""/v1/responses end to end: the `openai` client's Responses API against a live server.

Real engine, default weights (SmolLM2-135M, no tool training): forced calls are
grammar-constrained, so they are asserted on structure, never wisdom. One
server for the module; the store lives in a temporary data dir, and one test
kills the server and starts another on the same dir.
"""

from __future__ import annotations

import json
import signal
from pathlib import Path
from typing import Any, Iterator

import httpx
import pytest
from openai import BadRequestError, NotFoundError, OpenAI

from tests.live_server import server_process

pytestmark = pytest.mark.e2e

KEY = "responses-key"
WEATHER = {"type": "function", "name": "get_weather", "description": "Current weather in a city",
           "parameters": {"type": "object", "properties": {"city": {"type": "string", "maxLength": 20}},
                          "required": ["city"], "additionalProperties": False}, "strict": True}
TIME = {"type": "function", "name": "get_time", "description": "Current time in a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string", "maxLength": 20}},
                       "required": ["city"]}}
ASK = "What is the weather in Paris?"
BASE = {"model": "smol", "temperature": 0, "max_output_tokens": 60}


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("localtools-data")


@pytest.fixture(scope="module")
def served(data_dir: Path) -> Iterator[tuple[str, OpenAI]]:
    with server_process(["--api-key", KEY], env={"LOCALTOOLS_DATA_DIR": str(data_dir)}) as (_, base_url):
        yield base_url, OpenAI(base_url=f"{base_url}/v1", api_key=KEY, max_retries=0, timeout=120)


def test_text_reply(served: tuple[str, OpenAI]) -> None:
    _, client = served
    resp = client.responses.create(input="Say hello.", instructions="You are brief.", **BASE)
    assert resp.object == "response" and resp.id.startswith("resp_")
    assert resp.status in ("completed", "incomplete") and isinstance(resp.output_text, str)
    assert resp.output[0].type == "message" and resp.usage.input_tokens > 0 and resp.usage.output_tokens > 0


@pytest.mark.parametrize("choice", ["required", {"type": "function", "name": "get_time"}])
def test_forced_call_is_valid(served: tuple[str, OpenAI], choice: Any) -> None:
    _, client = served
    resp = client.responses.create(input=ASK, tools=[WEATHER, TIME], tool_choice=choice, parallel_tool_calls=False,
                                   **BASE)
    calls = [item for item in resp.output if item.type == "function_call"]
    assert calls and resp.status == "completed"
    if isinstance(choice, dict):
        assert {c.name for c in calls} == {"get_time"}
    for c in calls:
        args = json.loads(c.arguments)
        assert isinstance(args.get("city"), str) and c.call_id


def _summary(resp: Any) -> list[tuple[str, str]]:
    out = []
    for item in resp.output:
        if item.type == "message":
            out.append(("message", "".join(p.text for p in item.content)))
        elif item.type == "function_call":
            out.append((item.name, item.arguments))
    return out


@pytest.mark.parametrize("tools", [False, True])
def test_stream_equals_non_stream(served: tuple[str, OpenAI], tools: bool) -> None:
    _, client = served
    body: dict[str, Any] = dict(input=ASK, **BASE)
    if tools:
        body.update(tools=[WEATHER], tool_choice="required", parallel_tool_calls=False)
    client.responses.create(**{**body, "max_output_tokens": 1})  # warm the KV cache (see test_streaming_e2e)
    whole = client.responses.create(**body)
    kinds: list[str] = []
    arg_deltas = ""
    final = None
    with client.responses.stream(**body) as stream:
        for event in stream:
            kinds.append(event.type)
            if event.type == "response.function_call_arguments.delta":
                arg_deltas += event.delta
            if event.type in ("response.completed", "response.incomplete"):
                final = event.response  # the SDK's get_final_response() takes only 'completed'
    assert final is not None and final.status == whole.status
    assert kinds[:2] == ["response.created", "response.in_progress"]
    assert kinds[-1] in ("response.completed", "response.incomplete")
    assert _summary(final) == _summary(whole)
    if tools:
        assert arg_deltas == final.output[0].arguments


def test_tool_round_trip_by_previous_response_id(served: tuple[str, OpenAI]) -> None:
    _, client = served
    first = client.responses.create(input=ASK, tools=[WEATHER], tool_choice="required",
                                    parallel_tool_calls=False, **BASE)
    call = next(item for item in first.output if item.type == "function_call")
    second = client.responses.create(
        previous_response_id=first.id, tools=[WEATHER],
        input=[{"type": "function_call_output", "call_id": call.call_id, "output": "Sunny, 21 C"}], **BASE)
    assert second.previous_response_id == first.id and second.output
    fetched = client.responses.retrieve(second.id)
    assert fetched.id == second.id and _summary(fetched) == _summary(second)


def test_store_false_is_not_kept_and_delete_removes(served: tuple[str, OpenAI]) -> None:
    _, client = served
    unstored = client.responses.create(input="Hi", store=False, **{**BASE, "max_output_tokens": 3})
    with pytest.raises(NotFoundError):
        client.responses.retrieve(unstored.id)
    kept = client.responses.create(input="Hi", **{**BASE, "max_output_tokens": 3})
    client.responses.delete(kept.id)
    with pytest.raises(NotFoundError):
        client.responses.retrieve(kept.id)


@pytest.mark.parametrize("body, param", [
    ({"input": [{"type": "function_call_output", "call_id": "call_nope", "output": "x"}]}, "input[0].call_id"),
    ({"input": [{"type": "mystery_item"}]}, "input[0].type"),
    ({"input": "x", "tools": [{"type": "web_search"}]}, "tools[0].type"),
    ({"input": "x", "max_output_tokens": "many"}, "max_output_tokens"),
    ({"input": [{"role": "user", "content": [{"type": "input_image", "image_url": "https://example.com/a.png"}]}]},
     "input[0].content[0].type"),
])
def test_bad_input_gets_openai_400(served: tuple[str, OpenAI], body: dict[str, Any], param: str) -> None:
    base_url, _ = served
    r = httpx.post(f"{base_url}/v1/responses", json={"model": "smol", **body},
                   headers={"Authorization": f"Bearer {KEY}"}, timeout=60)
    assert r.status_code == 400, r.text
    error = r.json()["error"]
    assert error["param"] == param and error["type"] == "invalid_request_error" and error["message"]


def test_unknown_previous_response_id_is_404(served: tuple[str, OpenAI]) -> None:
    _, client = served
    with pytest.raises(NotFoundError) as info:
        client.responses.create(input="x", previous_response_id="resp_doesnotexist", **BASE)
    assert info.value.body["code"] == "previous_response_not_found"
    with pytest.raises(BadRequestError):
        client.responses.create(input="x", tools=[{"type": "file_search", "vector_store_ids": ["vs_1"]}], **BASE)


def test_store_survives_a_killed_server(data_dir: Path) -> None:
    env = {"LOCALTOOLS_DATA_DIR": str(data_dir)}
    with server_process([], env=env) as (proc, base_url):
        client = OpenAI(base_url=f"{base_url}/v1", api_key="x", max_retries=0, timeout=120)
        resp = client.responses.create(input="Hi", **{**BASE, "max_output_tokens": 3})
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
    with server_process([], env=env) as (_, base_url):
        client = OpenAI(base_url=f"{base_url}/v1", api_key="x", max_retries=0, timeout=120)
        again = client.responses.retrieve(resp.id)
        assert again.id == resp.id and _summary(again) == _summary(resp)
        follow = client.responses.create(previous_response_id=resp.id, input="And?", **{**BASE, "max_output_tokens": 3})
        assert follow.previous_response_id == resp.id
