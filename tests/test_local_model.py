"""The Python API: LocalModel.chat (plain, tools, streaming) and run_tools."""

from __future__ import annotations

import json

import pytest

from localtools import LocalModel

pytestmark = pytest.mark.e2e

CALLS: list[dict] = []


def get_weather(city: str, unit: str = "celsius") -> str:
    """Get the current weather in a city.

    Args:
        city: The city name, e.g. "Paris".
        unit: Temperature unit. (choices: ["celsius", "fahrenheit"])
    """
    CALLS.append({"city": city, "unit": unit})
    return f"Sunny, 21 degrees {unit} in {city}."


@pytest.fixture(scope="module")
def model() -> LocalModel:
    with LocalModel() as m:
        yield m


def test_plain_chat_is_openai_shaped(model: LocalModel) -> None:
    reply = model.chat([{"role": "user", "content": "Say hi"}], max_tokens=8, temperature=0)
    assert reply["object"] == "chat.completion"
    choice = reply["choices"][0]
    assert choice["message"]["role"] == "assistant" and choice["message"]["content"]
    assert choice["finish_reason"] in ("stop", "length")
    assert reply["usage"]["completion_tokens"] <= 8


def test_python_function_as_tool_gives_a_valid_call(model: LocalModel) -> None:
    reply = model.chat(
        [{"role": "user", "content": "Weather in Rome?"}],
        tools=[get_weather], tool_choice="required", temperature=0, max_tokens=60,
    )
    call = reply["choices"][0]["message"]["tool_calls"][0]
    assert call["function"]["name"] == "get_weather"
    args = json.loads(call["function"]["arguments"])
    assert isinstance(args["city"], str)
    assert args.get("unit", "celsius") in ("celsius", "fahrenheit")


def test_streaming_chunks_reassemble_to_the_same_call(model: LocalModel) -> None:
    kwargs = dict(tools=[get_weather], tool_choice="required", temperature=0, max_tokens=60, seed=1)
    msgs = [{"role": "user", "content": "Weather in Oslo?"}]
    whole = model.chat(msgs, **kwargs)["choices"][0]
    name, args, finish = None, "", None
    for chunk in model.chat(msgs, stream=True, **kwargs):
        for choice in chunk["choices"]:
            for tc in choice["delta"].get("tool_calls") or []:
                name = tc["function"].get("name") or name
                args += tc["function"].get("arguments") or ""
            finish = choice["finish_reason"] or finish
    first = whole["message"]["tool_calls"][0]["function"]
    assert (name, args, finish) == (first["name"], first["arguments"], whole["finish_reason"])


def test_run_tools_executes_the_function_and_feeds_the_result_back(model: LocalModel) -> None:
    CALLS.clear()
    messages = [{"role": "user", "content": "What is the weather in Paris?"}]
    seen = []
    final = model.run_tools(
        messages, [get_weather], tool_choice="required", temperature=0, max_tokens=60,
        on_call=lambda name, args, result: seen.append((name, result)),
    )
    assert CALLS, "the function was never called"
    assert seen[0][0] == "get_weather" and seen[0][1].startswith("Sunny")
    roles = [m["role"] for m in messages]
    assert roles[:3] == ["user", "assistant", "tool"]
    assert messages[2]["content"].startswith("Sunny")
    assert final["object"] == "chat.completion"
