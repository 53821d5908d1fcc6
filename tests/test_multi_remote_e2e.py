"""One `localtools serve --models-file` serving two remote-backed models (each table with
its own `engine_url`, two real llama-server processes) beside an in-process one: routed
by `model`, tool calls grammar-true through each, listed with their kind."""

from __future__ import annotations

import json
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from openai import OpenAI

from localtools.default_model import default_model_path
from tests.live_server import live_server
from tests.llama_server import LlamaServer, require_llama_server

pytestmark = pytest.mark.e2e

WEATHER = {"type": "function", "function": {
    "name": "get_weather", "description": "Current weather in a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, list[LlamaServer]]]:
    binary = require_llama_server()
    ups = [LlamaServer(binary, default_model_path(), n_ctx=2048, slots=2, api_key="k-one"),
           LlamaServer(binary, default_model_path(), n_ctx=2048, slots=2)]
    where = tmp_path_factory.mktemp("remote-models")
    models = where / "models.toml"
    models.write_text(
        f'[models.north]\nmodel = "{default_model_path()}"\nengine_url = "{ups[0].url}"\nengine_api_key = "k-one"\n'
        f'[models.south]\nmodel = "{default_model_path()}"\nengine_url = ["{ups[1].url}"]\n'
        f'[models.here]\nmodel = "{default_model_path()}"\nn_ctx = 1024\n')
    try:
        for up in ups:
            up.wait_ready()
        with live_server(["--models-file", str(models)]) as url:
            yield url, ups
    finally:
        for up in ups:
            up.kill()


def _call(client: OpenAI, model: str) -> tuple[str, str]:
    reply = client.chat.completions.create(
        model=model, messages=[{"role": "user", "content": "Weather in Lima?"}], tools=[WEATHER],
        tool_choice="required", max_tokens=40, temperature=0)
    (call,) = reply.choices[0].message.tool_calls
    assert isinstance(json.loads(call.function.arguments)["city"], str)
    return reply.model, call.function.name


def test_each_remote_model_is_served_by_its_own_upstream(served: tuple[str, list[LlamaServer]]) -> None:
    url, ups = served
    client = OpenAI(base_url=f"{url}/v1", api_key="unused", max_retries=0, timeout=120)
    with ThreadPoolExecutor(6) as pool:
        results = list(pool.map(lambda m: _call(client, m), ["north", "south", "here"] * 2))
    assert sorted(set(results)) == [("here", "get_weather"), ("north", "get_weather"), ("south", "get_weather")]
    # north's upstream refuses requests without its key and south's table gives none, so
    # each model reached its own upstream
    cards = {c["id"]: c["meta"] for c in httpx.get(f"{url}/v1/models", timeout=10).json()["data"]}
    assert (cards["north"]["kind"], cards["south"]["kind"], cards["here"]["kind"]) == ("remote", "remote", "local")
    assert "k-one" not in json.dumps(cards)


def test_streaming_through_a_remote_model(served: tuple[str, list[LlamaServer]]) -> None:
    url, _ = served
    client = OpenAI(base_url=f"{url}/v1", api_key="unused", max_retries=0, timeout=120)
    chunks = list(client.chat.completions.create(
        model="south", messages=[{"role": "user", "content": "Count to five."}], max_tokens=16, temperature=0,
        stream=True))
    assert {c.model for c in chunks} == {"south"}
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
