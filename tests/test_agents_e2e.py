"""Agent frameworks end to end, each with a real tool round trip on the default model.

The OpenAI Agents SDK with its default Responses model and a `@function_tool`
(run and streamed), and pydantic-ai over the Responses API and over the
Anthropic Messages API. The first model turn is forced to call (grammar-true,
so even the tiny model does); the tool runs in the test process; its result goes
back to the model, which answers. Asserted: the call's arguments, that the tool
ran, and that the run ended with a final text answer. Tracing is off: nothing
leaves 127.0.0.1.
"""

from __future__ import annotations

import asyncio
from typing import Any, Iterator

import pytest

from tests.live_server import live_server

pytestmark = pytest.mark.e2e

QUESTION = "What is the weather in Paris?"


@pytest.fixture(scope="module")
def base_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    data = tmp_path_factory.mktemp("agents-data")
    with live_server([], env={"LOCALTOOLS_DATA_DIR": str(data)}) as url:
        yield url


def _weather_tool(calls: list[str]) -> Any:
    def get_weather(city: str) -> str:
        """Get the current weather in a city.

        Args:
            city: The city name.
        """
        calls.append(city)
        return f"Sunny, 21 C in {city}"

    return get_weather


@pytest.mark.parametrize("streamed", [False, True])
def test_openai_agents_sdk_tool_round_trip(base_url: str, streamed: bool) -> None:
    from agents import (Agent, ModelSettings, Runner, ToolCallItem, ToolCallOutputItem, function_tool,
                        set_default_openai_api, set_default_openai_client, set_tracing_disabled)
    from openai import AsyncOpenAI

    set_tracing_disabled(True)
    set_default_openai_api("responses")
    calls: list[str] = []
    agent = Agent(
        name="weather",
        instructions="Answer questions about the weather with the get_weather tool.",
        tools=[function_tool(_weather_tool(calls))],
        # the first turn must call; reset_tool_choice (the default) lets the next one answer
        model_settings=ModelSettings(tool_choice="required", temperature=0, max_tokens=60, parallel_tool_calls=False),
    )

    async def run() -> Any:
        set_default_openai_client(AsyncOpenAI(base_url=f"{base_url}/v1", api_key="x", max_retries=0),
                                  use_for_tracing=False)
        if not streamed:
            return await Runner.run(agent, QUESTION, max_turns=4)
        result = Runner.run_streamed(agent, QUESTION, max_turns=4)
        async for _ in result.stream_events():
            pass
        return result

    result = asyncio.run(run())
    assert calls and all(isinstance(city, str) and city for city in calls)
    call_items = [i for i in result.new_items if isinstance(i, ToolCallItem)]
    outputs = [i for i in result.new_items if isinstance(i, ToolCallOutputItem)]
    assert call_items[0].raw_item.name == "get_weather"
    assert outputs and outputs[0].output.startswith("Sunny")
    assert isinstance(result.final_output, str)


def _pydantic_ai_round_trip(model: Any) -> tuple[Any, list[str]]:
    from pydantic_ai import Agent
    from pydantic_ai.messages import ToolCallPart, ToolReturnPart

    calls: list[str] = []

    def settings(ctx: Any) -> dict[str, Any]:
        # forced until the tool ran, then free to answer (a static 'required' could never end)
        return {"tool_choice": "none" if calls else "required", "temperature": 0, "max_tokens": 60}

    agent = Agent(model, instructions="Answer with the get_weather tool.", model_settings=settings)
    agent.tool_plain(_weather_tool(calls))
    result = agent.run_sync(QUESTION)
    parts = [p for m in result.all_messages() for p in m.parts]
    assert [p.tool_name for p in parts if isinstance(p, ToolCallPart)] == ["get_weather"]
    assert [p.content for p in parts if isinstance(p, ToolReturnPart)][0].startswith("Sunny")
    assert isinstance(result.output, str)
    return result, calls


def test_pydantic_ai_over_responses(base_url: str) -> None:
    from pydantic_ai.models.openai import OpenAIResponsesModel
    from pydantic_ai.providers.openai import OpenAIProvider

    model = OpenAIResponsesModel("smol", provider=OpenAIProvider(base_url=f"{base_url}/v1", api_key="x"))
    _, calls = _pydantic_ai_round_trip(model)
    assert len(calls) == 1 and calls[0]


def test_pydantic_ai_over_anthropic_messages(base_url: str) -> None:
    from anthropic import AsyncAnthropic
    from pydantic_ai.models.anthropic import AnthropicModel
    from pydantic_ai.providers.anthropic import AnthropicProvider

    # anthropic>=2 sends `anthropic-version: 2026-10-21`, for which pydantic-ai drops the
    # `temperature` setting (with a warning): the model would sample, and sometimes call
    # the tool twice in the first turn (5-9% of runs). The older version keeps temperature 0.
    client = AsyncAnthropic(base_url=base_url, api_key="x", default_headers={"anthropic-version": "2023-06-01"})
    model = AnthropicModel("smol", provider=AnthropicProvider(anthropic_client=client))
    _, calls = _pydantic_ai_round_trip(model)
    assert len(calls) == 1 and calls[0]
