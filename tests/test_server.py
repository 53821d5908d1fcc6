"""End to end: `localtools serve` on the default model, called with the official openai client."""

from __future__ import annotations

import json
import signal
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Iterator

import httpx
import pytest
from openai import APIStatusError, AuthenticationError, OpenAI

from tests.live_server import live_server, server_process

pytestmark = pytest.mark.e2e

WEATHER_TOOL = {
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
}
# A prompt SmolLM2 continues for a long time (greedy): used to test cancellation.
ENDLESS = [{"role": "user", "content": "Continue this sequence forever without stopping: 1, 2, 3, 4, 5,"}]


@pytest.fixture(scope="module")
def base_url() -> Iterator[str]:
    with live_server(["--n-ctx", "2048", "--alias", "tiny"]) as url:
        yield url


@pytest.fixture(scope="module")
def client(base_url: str) -> OpenAI:
    return OpenAI(base_url=f"{base_url}/v1", api_key="unused", max_retries=0, timeout=120)


@pytest.fixture(scope="module")
def local_runtime() -> Iterator[Any]:
    """The same model loaded in the test process, to count tokens independently."""
    from localtools.runtime import load_runtime

    runtime = load_runtime(None, n_ctx=2048)
    yield runtime
    runtime.close()


def _prompt_tokens(runtime: Any, messages: list[dict[str, Any]]) -> int:
    from localtools.service import ChatOptions, render_prompt

    prompt = render_prompt(runtime, messages, ChatOptions())
    return len(runtime.engine.tokenize_prompt(prompt))


def test_health_and_models(base_url: str, client: OpenAI) -> None:
    health = httpx.get(f"{base_url}/health").json()
    assert health["status"] == "ok" and health["model"] == "tiny" and health["queue"] == 0
    models = client.models.list().data
    assert [m.id for m in models] == ["tiny"]
    assert models[0].object == "model"


def test_chat_non_streaming_text_and_usage(client: OpenAI, local_runtime: Any) -> None:
    messages = [{"role": "user", "content": "Write a sentence about the sea."}]
    reply = client.chat.completions.create(model="anything", messages=messages, max_tokens=6, temperature=0)
    assert reply.id.startswith("chatcmpl-") and reply.object == "chat.completion"
    assert reply.model == "tiny"
    choice = reply.choices[0]
    assert choice.message.role == "assistant"
    assert choice.message.content and choice.message.tool_calls is None
    assert choice.finish_reason == "length"
    usage = reply.usage
    assert usage.prompt_tokens == _prompt_tokens(local_runtime, messages)
    assert usage.completion_tokens == 6
    assert usage.total_tokens == usage.prompt_tokens + 6
    # the text is what 6 generated tokens detokenize to (re-tokenizing may merge a token or two)
    assert 1 <= local_runtime.engine.count_tokens(choice.message.content) <= 6


def test_chat_streaming_matches_non_streaming(client: OpenAI, local_runtime: Any) -> None:
    messages = [{"role": "user", "content": "Name three colours."}]
    whole = client.chat.completions.create(model="tiny", messages=messages, max_tokens=8, temperature=0)
    chunks = list(
        client.chat.completions.create(
            model="tiny", messages=messages, max_tokens=8, temperature=0,
            stream=True, stream_options={"include_usage": True},
        )
    )
    assert chunks[0].choices[0].delta.role == "assistant"
    assert len({c.id for c in chunks}) == 1 and chunks[0].id.startswith("chatcmpl-")
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == whole.choices[0].message.content
    finishes = [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason]
    assert finishes == ["length"]
    assert chunks[-1].choices == [] and chunks[-1].usage is not None
    assert chunks[-1].usage.completion_tokens == 8
    assert chunks[-1].usage.prompt_tokens == _prompt_tokens(local_runtime, messages)
    # the repeated prompt is served from the KV cache
    assert chunks[-1].usage.prompt_tokens_details.cached_tokens > 0


def test_stream_wire_format_ends_with_done(base_url: str) -> None:
    body = {"messages": [{"role": "user", "content": "Hi"}], "max_tokens": 3, "stream": True}
    with httpx.stream("POST", f"{base_url}/v1/chat/completions", json=body, timeout=60) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        data = [line[5:].strip() for line in response.iter_lines() if line.startswith("data:")]
    assert data[-1] == "[DONE]"
    chunks = [json.loads(d) for d in data[:-1]]
    assert all(c["object"] == "chat.completion.chunk" for c in chunks)
    assert chunks[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    assert chunks[-1]["choices"][0]["delta"] == {} and chunks[-1]["choices"][0]["finish_reason"]
    assert "usage" not in chunks[-1]  # no include_usage: no usage fields


def test_required_tool_call(client: OpenAI) -> None:
    reply = client.chat.completions.create(
        model="tiny",
        messages=[{"role": "user", "content": "What is the weather in Paris?"}],
        tools=[WEATHER_TOOL],
        tool_choice={"type": "function", "function": {"name": "get_weather"}},
        parallel_tool_calls=False,
        max_tokens=60,
        temperature=0,
    )
    choice = reply.choices[0]
    assert choice.finish_reason == "tool_calls"
    assert choice.message.content is None
    (call,) = choice.message.tool_calls
    assert call.type == "function" and call.function.name == "get_weather"
    assert call.id.startswith("call_")
    assert isinstance(json.loads(call.function.arguments), dict)


def test_required_tool_call_streaming(client: OpenAI) -> None:
    stream = client.chat.completions.create(
        model="tiny",
        messages=[{"role": "user", "content": "What is the weather in Rome?"}],
        tools=[WEATHER_TOOL],
        tool_choice="required",
        parallel_tool_calls=False,
        max_tokens=60,
        temperature=0,
        stream=True,
    )
    opened: list[Any] = []
    arguments = ""
    finish = None
    for chunk in stream:
        if not chunk.choices:
            continue
        delta = chunk.choices[0].delta
        for call in delta.tool_calls or []:
            if call.id is not None:
                opened.append(call)
                assert call.function.name == "get_weather" and call.function.arguments == ""
            else:
                assert call.index == 0 and call.function.name is None
                arguments += call.function.arguments
        finish = chunk.choices[0].finish_reason or finish
    assert len(opened) == 1 and opened[0].type == "function"
    assert finish == "tool_calls"
    assert isinstance(json.loads(arguments), dict)


def test_text_completions(client: OpenAI) -> None:
    reply = client.completions.create(model="tiny", prompt="The capital of France is", max_tokens=4, temperature=0)
    assert reply.object == "text_completion" and reply.id.startswith("cmpl-")
    assert reply.choices[0].text
    assert reply.usage.completion_tokens == 4 and reply.choices[0].finish_reason == "length"
    streamed = client.completions.create(
        model="tiny", prompt="The capital of France is", max_tokens=4, temperature=0, stream=True
    )
    text = "".join(c.choices[0].text for c in streamed if c.choices)
    assert text == reply.choices[0].text


def test_bad_request_is_an_openai_error(client: OpenAI) -> None:
    with pytest.raises(APIStatusError) as info:
        client.chat.completions.create(model="tiny", messages=[], max_tokens=4)
    assert info.value.status_code == 400
    assert info.value.body["param"] == "messages"


def assert_model_free(base_url: str) -> None:
    """A new request starts at once: an abandoned generation would keep it queued for long."""
    body = {"messages": [{"role": "user", "content": "Hi"}], "max_tokens": 2, "temperature": 0}
    with ThreadPoolExecutor(max_workers=1) as pool:
        reply = pool.submit(httpx.post, f"{base_url}/v1/chat/completions", json=body, timeout=120)
        time.sleep(1.0)
        waiting = httpx.get(f"{base_url}/health").json()["queue"]
        assert reply.result().json()["usage"]["completion_tokens"] == 2
    assert waiting == 0, "the abandoned generation was still running"
    # with several slots a new request starts beside a leftover one: check none is left
    deadline = time.monotonic() + 5
    while (busy := httpx.get(f"{base_url}/health").json().get("slots_busy", 0)) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert busy == 0, "the abandoned generation still holds a slot"


def test_disconnect_mid_stream_frees_the_model(base_url: str) -> None:
    body = {"messages": ENDLESS, "max_tokens": 1500, "temperature": 0, "stream": True}
    with httpx.stream("POST", f"{base_url}/v1/chat/completions", json=body, timeout=60) as response:
        assert response.status_code == 200
        seen = 0
        for line in response.iter_lines():
            if line.startswith("data:"):
                seen += 1
            if seen >= 4:
                break  # leave mid-stream: the connection closes
    assert_model_free(base_url)


def test_disconnect_while_waiting_for_a_whole_reply(base_url: str) -> None:
    body = {"messages": ENDLESS, "max_tokens": 1500, "temperature": 0}
    with pytest.raises(httpx.ReadTimeout):
        httpx.post(f"{base_url}/v1/chat/completions", json=body, timeout=3)  # gives up: connection closed
    assert_model_free(base_url)


@pytest.mark.parametrize("stream", [False, True])
def test_tool_choice_none_never_returns_calls(client: OpenAI, stream: bool) -> None:
    kwargs: dict[str, Any] = dict(
        model="tiny",
        messages=[{"role": "user", "content": "What is the weather in Oslo? Use get_weather."}],
        tools=[WEATHER_TOOL],
        tool_choice="none",
        max_tokens=24,
        temperature=0,
    )
    if stream:
        chunks = [c for c in client.chat.completions.create(stream=True, **kwargs) if c.choices]
        assert not any(c.choices[0].delta.tool_calls for c in chunks)
        finish = chunks[-1].choices[0].finish_reason
    else:
        choice = client.chat.completions.create(**kwargs).choices[0]
        assert choice.message.tool_calls is None and choice.message.content
        finish = choice.finish_reason
    assert finish in ("stop", "length")


def test_api_key_enforced() -> None:
    with live_server(["--api-key", "sesame"]) as url:
        assert httpx.get(f"{url}/health").status_code == 200  # probes need no key
        with pytest.raises(AuthenticationError) as info:
            OpenAI(base_url=f"{url}/v1", api_key="wrong", max_retries=0).models.list()
        assert info.value.body["code"] == "invalid_api_key"
        missing = httpx.post(f"{url}/v1/chat/completions", json={"messages": []})
        assert missing.status_code == 401
        assert missing.json()["error"]["type"] == "invalid_request_error"
        good = OpenAI(base_url=f"{url}/v1", api_key="sesame", max_retries=0)
        assert [m.id for m in good.models.list().data] == ["smollm2-135m"]
        reply = good.chat.completions.create(model="x", messages=[{"role": "user", "content": "Hi"}], max_tokens=2, temperature=0)
        assert reply.usage.completion_tokens == 2


def test_queue_full_gives_429() -> None:
    with live_server(["--max-queue", "1"]) as url:
        body = {"messages": ENDLESS, "max_tokens": 16, "temperature": 0}

        def post() -> httpx.Response:
            return httpx.post(f"{url}/v1/chat/completions", json=body, timeout=300)

        with ThreadPoolExecutor(max_workers=5) as pool:
            responses = list(pool.map(lambda _: post(), range(5)))
        statuses = sorted(r.status_code for r in responses)
        assert statuses.count(200) >= 2  # one running, one waiting
        assert 429 in statuses and set(statuses) <= {200, 429}
        for r in responses:
            if r.status_code == 429:
                assert int(r.headers["Retry-After"]) >= 1
                error = r.json()["error"]
                assert error["code"] == "rate_limit_exceeded" and error["type"] == "rate_limit_error"
        assert httpx.get(f"{url}/health").json()["queue"] == 0


def test_sigterm_cancels_streams_and_exits_0() -> None:
    with server_process() as (proc, url):
        body = {"messages": ENDLESS, "max_tokens": 1500, "temperature": 0, "stream": True}
        lines: list[str] = []
        with httpx.stream("POST", f"{url}/v1/chat/completions", json=body, timeout=60) as response:
            for line in response.iter_lines():
                lines.append(line)
                if len([x for x in lines if x.startswith("data:")]) == 3:
                    proc.send_signal(signal.SIGTERM)
            # the stream ends by itself once the generation is cancelled
        # 1500 tokens take over a minute here: exiting within 30 s means the run was cancelled
        assert proc.wait(timeout=30) == 0
        assert len([x for x in lines if x.startswith("data:")]) < 1500
