"""`serve --engine-url` in front of a real llama-server started with `--api-key`: the
key travels as a bearer token, never shows in logs or listings, and a missing or wrong
key is a clear refusal, not a hang or a misdetected engine."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator

import httpx
import pytest
from openai import OpenAI

from localtools.default_model import default_model_path
from localtools.remote.wire import UpstreamFailed, reply_error
from tests.live_server import server_process
from tests.llama_server import LlamaServer, require_llama_server

pytestmark = pytest.mark.e2e

KEY = "sk-upstream-7f3a9c"
WEATHER = {"type": "function", "function": {
    "name": "get_weather", "description": "Current weather in a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}


@pytest.fixture(scope="module")
def upstream() -> Iterator[LlamaServer]:
    server = LlamaServer(require_llama_server(), default_model_path(), n_ctx=2048, api_key=KEY)
    try:
        server.wait_ready()
        yield server
    finally:
        server.kill()


def test_the_upstream_really_wants_the_key(upstream: LlamaServer) -> None:
    assert httpx.post(upstream.url + "/completion", json={"prompt": "Hi", "n_predict": 1}).status_code == 401


def test_the_key_from_the_environment_reaches_the_upstream_and_stays_hidden(upstream: LlamaServer) -> None:
    args = ["--chat-template-from", str(default_model_path()), "--engine-url", upstream.url]
    with server_process(args, env={"LOCALTOOLS_ENGINE_API_KEY": KEY}) as (proc, base_url):
        client = OpenAI(base_url=f"{base_url}/v1", api_key="unused", max_retries=0, timeout=120)
        reply = client.chat.completions.create(
            model="any", messages=[{"role": "user", "content": "Weather in Oslo?"}], tools=[WEATHER],
            tool_choice="required", max_tokens=40, temperature=0)
        (call,) = reply.choices[0].message.tool_calls
        assert call.function.name == "get_weather" and json.loads(call.function.arguments)
        listing = httpx.get(f"{base_url}/v1/models", timeout=10).text + httpx.get(f"{base_url}/health").text
        assert KEY not in listing
        assert KEY not in " ".join(proc.args)  # not on the command line (ps) either


@pytest.mark.parametrize("key_args", [[], ["--engine-api-key", "wrong-key"]], ids=["missing", "wrong"])
def test_a_missing_or_wrong_key_is_refused_clearly_at_start(upstream: LlamaServer, key_args: list[str]) -> None:
    cmd = [sys.executable, "-m", "localtools", "serve", "--host", "127.0.0.1", "--port", "0",
           "--chat-template-from", str(default_model_path()), "--engine-url", upstream.url, *key_args]
    env = {k: v for k, v in os.environ.items() if k != "LOCALTOOLS_ENGINE_API_KEY"}
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=120, env=env)
    assert done.returncode != 0
    assert "refused the API key (HTTP 401)" in done.stderr
    assert "--engine-api-key" in done.stderr and "Traceback" not in done.stderr
    assert "wrong-key" not in done.stderr


def test_a_refusal_mid_service_names_the_key() -> None:
    err = reply_error(401, '{"error": {"message": "Invalid API Key"}}', prompt_tokens=5, n_ctx=2048)
    assert isinstance(err, UpstreamFailed)
    assert "refused the API key" in str(err) and "Invalid API Key" in str(err)
