"""Bad requests against the real server: status, error.type and error.param for each.

One live server (default model, small context and body limit) takes every
case; it must still serve a normal request afterwards.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Iterator

import httpx
import pytest

from tests.live_server import live_server

pytestmark = pytest.mark.e2e

CHAT = "/v1/chat/completions"
COMPLETIONS = "/v1/completions"
N_CTX = 256
MAX_BODY_BYTES = int(0.05 * 1024 * 1024)

USER = {"role": "user", "content": "Hi"}
TOOL = {
    "type": "function",
    "function": {"name": "get_weather", "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}},
}
CALL = {"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'}}


def chat(**fields: Any) -> dict[str, Any]:
    return {"messages": [USER], "max_tokens": 1, **fields}


def tool_fn(**fields: Any) -> dict[str, Any]:
    return {"type": "function", "function": fields}


@dataclass
class Case:
    id: str
    body: Any  # a dict is sent as JSON, bytes as they are
    status: int
    param: str | None
    type: str = "invalid_request_error"
    path: str = CHAT
    code: str | None = None
    method: str = "POST"


CASES = [
    # ---- the body itself
    Case("not-json", b'{"messages": [', 400, None),
    Case("invalid-utf8", b'{"messages": [{"role": "user", "content": "\xff\xfe"}]}', 400, None),
    Case("empty-body", b"", 400, None),
    Case("nan-constant", b'{"messages": [{"role": "user", "content": "hi"}], "temperature": NaN}', 400, None),
    Case("top-level-array", [USER], 400, None),
    Case("too-large", b'{"messages": "' + b"x" * (MAX_BODY_BYTES + 10) + b'"}', 413, None,
         code="request_too_large"),
    # ---- messages
    Case("messages-missing", {"max_tokens": 1}, 400, "messages"),
    Case("messages-empty", chat(messages=[]), 400, "messages"),
    Case("messages-not-list", chat(messages="hello"), 400, "messages"),
    Case("message-not-object", chat(messages=["hello"]), 400, "messages[0]"),
    Case("role-unknown", chat(messages=[{"role": "robot", "content": "x"}]), 400, "messages[0].role"),
    Case("role-missing", chat(messages=[{"content": "x"}]), 400, "messages[0].role"),
    Case("content-wrong-type", chat(messages=[{"role": "user", "content": 5}]), 400, "messages[0].content"),
    Case("content-null-user", chat(messages=[{"role": "user", "content": None}]), 400, "messages[0].content"),
    Case("content-part-image", chat(messages=[{"role": "user", "content": [
        {"type": "text", "text": "look"}, {"type": "image_url", "image_url": {"url": "http://x/y.png"}}]}]),
        400, "messages[0].content[1].type"),
    Case("content-part-no-text", chat(messages=[{"role": "user", "content": [{"type": "text"}]}]),
         400, "messages[0].content[0].text"),
    Case("content-part-text-number", chat(messages=[{"role": "user", "content": [{"type": "text", "text": 3}]}]),
         400, "messages[0].content[0].text"),
    Case("tool-without-id", chat(messages=[USER, {"role": "assistant", "tool_calls": [CALL]},
                                           {"role": "tool", "content": "sunny"}]),
         400, "messages[2].tool_call_id"),
    Case("tool-answers-nothing", chat(messages=[USER, {"role": "tool", "tool_call_id": "call_9", "content": "x"}]),
         400, "messages[1].tool_call_id"),
    Case("tool-answers-unknown-id", chat(messages=[USER, {"role": "assistant", "tool_calls": [CALL]},
                                                   {"role": "tool", "tool_call_id": "call_2", "content": "x"}]),
         400, "messages[2].tool_call_id"),
    Case("call-arguments-not-json", chat(messages=[USER, {"role": "assistant", "tool_calls": [
        {**CALL, "function": {"name": "get_weather", "arguments": "{city: Paris"}}]}]),
        400, "messages[1].tool_calls[0].function.arguments"),
    Case("call-arguments-dict", chat(messages=[USER, {"role": "assistant", "tool_calls": [
        {**CALL, "function": {"name": "get_weather", "arguments": {"city": "Paris"}}}]}]),
        400, "messages[1].tool_calls[0].function.arguments"),
    Case("call-without-id", chat(messages=[USER, {"role": "assistant", "tool_calls": [
        {"type": "function", "function": CALL["function"]}]}]), 400, "messages[1].tool_calls[0].id"),
    Case("assistant-empty", chat(messages=[USER, {"role": "assistant"}]), 400, "messages[1].content"),
    # ---- sampling and counts
    Case("max-tokens-zero", chat(max_tokens=0), 400, "max_tokens"),
    Case("max-completion-tokens-negative", chat(max_completion_tokens=-1), 400, "max_completion_tokens"),
    Case("max-tokens-string", chat(max_tokens="10"), 400, "max_tokens"),
    Case("max-tokens-float", chat(max_tokens=2.5), 400, "max_tokens"),
    Case("n-two", chat(n=2), 400, "n"),
    Case("temperature-high", chat(temperature=2.5), 400, "temperature"),
    Case("temperature-negative", chat(temperature=-0.1), 400, "temperature"),
    Case("temperature-string", chat(temperature="hot"), 400, "temperature"),
    Case("top-p-high", chat(top_p=1.5), 400, "top_p"),
    Case("stop-five", chat(stop=["a", "b", "c", "d", "e"]), 400, "stop"),
    Case("stop-number", chat(stop=7), 400, "stop"),
    Case("seed-float", chat(seed=1.5), 400, "seed"),
    Case("seed-string", chat(seed="42"), 400, "seed"),
    Case("stream-string", chat(stream="yes"), 400, "stream"),
    Case("stream-options-without-stream", chat(stream_options={"include_usage": True}), 400, "stream_options"),
    Case("top-logprobs-without-logprobs", chat(top_logprobs=2), 400, "top_logprobs"),
    Case("top-logprobs-high", chat(logprobs=True, top_logprobs=21), 400, "top_logprobs"),
    Case("template-kwargs-not-object", chat(chat_template_kwargs=["enable_thinking"]), 400, "chat_template_kwargs"),
    # ---- tools
    Case("tools-not-list", chat(tools=TOOL), 400, "tools"),
    Case("tool-type-unknown", chat(tools=[{"type": "retrieval", "function": TOOL["function"]}]), 400, "tools[0].type"),
    Case("tool-no-function", chat(tools=[{"type": "function"}]), 400, "tools[0].function"),
    Case("tool-name-missing", chat(tools=[tool_fn(description="no name")]), 400, "tools[0].function.name"),
    Case("tool-name-spaces", chat(tools=[tool_fn(name="get weather")]), 400, "tools[0].function.name"),
    Case("tool-name-too-long", chat(tools=[tool_fn(name="f" * 65)]), 400, "tools[0].function.name"),
    Case("tool-name-duplicate", chat(tools=[TOOL, TOOL]), 400, "tools[1].function.name"),
    Case("tool-parameters-string-type", chat(tools=[tool_fn(name="f", parameters={"type": "string"})]),
         400, "tools[0].function.parameters"),
    Case("tool-parameters-list", chat(tools=[tool_fn(name="f", parameters=[{"type": "object"}])]),
         400, "tools[0].function.parameters"),
    Case("tool-parameters-bad-properties", chat(tools=[tool_fn(name="f", parameters={"type": "object", "properties": [1]})]),
         400, "tools[0].function.parameters.properties"),
    Case("tool-parameters-type-typo", chat(tools=[tool_fn(name="f", parameters={
        "type": "object", "properties": {"city": {"type": "strng"}}})]),
         400, "tools[0].function.parameters.properties.city.type"),
    Case("tool-parameters-enum-not-list", chat(tools=[tool_fn(name="f", parameters={
        "type": "object", "properties": {"unit": {"type": "string", "enum": "c"}}})]),
         400, "tools[0].function.parameters.properties.unit.enum"),
    Case("tool-parameters-min-length-string", chat(tools=[tool_fn(name="f", parameters={
        "type": "object", "properties": {"tags": {"type": "array", "items": {"type": "string", "minLength": "3"}}}})]),
         400, "tools[0].function.parameters.properties.tags.items.minLength"),
    Case("tool-parameters-maximum-string", chat(tools=[tool_fn(name="f", parameters={
        "type": "object", "properties": {"n": {"anyOf": [{"type": "integer", "maximum": "9"}, {"type": "null"}]}}})]),
         400, "tools[0].function.parameters.properties.n.anyOf[0].maximum"),
    Case("tool-function-extra-field", chat(tools=[tool_fn(name="f", parameters={}, returns="int")]),
         400, "tools[0].function.returns"),
    Case("tool-choice-unknown", chat(tools=[TOOL], tool_choice="sometimes"), 400, "tool_choice"),
    Case("tool-choice-not-offered", chat(tools=[TOOL], tool_choice={"type": "function", "function": {"name": "nope"}}),
         400, "tool_choice"),
    Case("tool-choice-without-tools", chat(tool_choice="required"), 400, "tool_choice"),
    Case("tool-choice-missing-function", chat(tools=[TOOL], tool_choice={"type": "function"}), 400, "tool_choice.function"),
    Case("parallel-tool-calls-string", chat(tools=[TOOL], parallel_tool_calls="yes"), 400, "parallel_tool_calls"),
    Case("function-call-not-offered", chat(functions=[TOOL["function"]], function_call={"name": "nope"}),
         400, "function_call"),
    Case("functions-and-tools", chat(functions=[TOOL["function"]], tools=[TOOL]), 400, "functions"),
    # ---- response_format
    Case("response-format-unknown", chat(response_format={"type": "xml"}), 400, "response_format.type"),
    Case("json-schema-missing", chat(response_format={"type": "json_schema"}), 400, "response_format.json_schema"),
    Case("json-schema-no-schema", chat(response_format={"type": "json_schema", "json_schema": {"name": "x"}}),
         400, "response_format.json_schema.schema"),
    # ---- the model and the context
    Case("context-too-long", chat(messages=[{"role": "user", "content": "word " * (N_CTX * 2)}]), 400, "messages",
         code="context_length_exceeded"),
    Case("strict-model-name", chat(model="gpt-4o"), 404, "model", code="model_not_found"),
    # ---- completions
    Case("completion-prompt-missing", {"max_tokens": 1}, 400, "prompt", path=COMPLETIONS),
    Case("completion-prompt-number", {"prompt": 5}, 400, "prompt", path=COMPLETIONS),
    Case("completion-two-prompts", {"prompt": ["a", "b"]}, 400, "prompt", path=COMPLETIONS),
    Case("completion-max-tokens-zero", {"prompt": "a", "max_tokens": 0}, 400, "max_tokens", path=COMPLETIONS),
    Case("completion-echo", {"prompt": "a", "echo": True}, 400, "echo", path=COMPLETIONS),
    Case("completion-context-too-long", {"prompt": "word " * (N_CTX * 2), "max_tokens": 1}, 400, "prompt",
         path=COMPLETIONS, code="context_length_exceeded"),
    # ---- routes
    Case("unknown-route", {}, 404, None, path="/v1/audio/speech", code="not_found"),
    Case("wrong-method", None, 405, None, method="GET", code="method_not_allowed"),
    # ---- hardening: bodies that once crashed the server (500) or slipped through
    Case("deeply-nested", b'{"messages": [{"role": "user", "content": "x"}], "x": '
         + b"[" * 20_000 + b"]" * 20_000 + b"}", 400, None),
    Case("lone-surrogate", b'{"messages": [{"role": "user", "content": "a\\ud800b"}]}', 400, "messages[0].content"),
    Case("lone-surrogate-in-key", b'{"messages": [{"role": "user", "content": "a"}], "\\udfff": 1}', 400, "\\udfff"),
    Case("infinity-constant", b'{"messages": [{"role": "user", "content": "hi"}], "top_p": Infinity}', 400, None),
    Case("null-body", b"null", 400, None),
    Case("string-body", b'"hello"', 400, None),
    Case("template-kwargs-messages", chat(chat_template_kwargs={"messages": []}), 400,
         "chat_template_kwargs.messages"),
    Case("template-kwargs-generation-prompt", chat(chat_template_kwargs={"add_generation_prompt": False}), 400,
         "chat_template_kwargs.add_generation_prompt"),
    Case("completion-prompt-empty", {"prompt": "", "max_tokens": 1}, 400, "prompt", path=COMPLETIONS),
    Case("messages-null", chat(messages=None), 400, "messages"),
    Case("content-object", chat(messages=[{"role": "user", "content": {"text": "x"}}]), 400, "messages[0].content"),
    Case("tool-message-no-content", chat(messages=[USER, {"role": "assistant", "tool_calls": [CALL]},
                                                   {"role": "tool", "tool_call_id": "call_1"}]),
         400, "messages[2].content"),
    Case("function-message-no-name", chat(messages=[USER, {"role": "function", "content": "x"}]),
         400, "messages[1].name"),
    Case("call-type-unknown", chat(messages=[USER, {"role": "assistant", "tool_calls": [{**CALL, "type": "code"}]}]),
         400, "messages[1].tool_calls[0].type"),
    Case("n-zero", chat(n=0), 400, "n"),
    Case("top-p-negative", chat(top_p=-0.5), 400, "top_p"),
    Case("top-k-negative", chat(top_k=-1), 400, "top_k"),
    Case("min-p-high", chat(min_p=1.5), 400, "min_p"),
    Case("repeat-penalty-zero", chat(repeat_penalty=0), 400, "repeat_penalty"),
    Case("presence-penalty-high", chat(presence_penalty=2.5), 400, "presence_penalty"),
    Case("frequency-penalty-low", chat(frequency_penalty=-3), 400, "frequency_penalty"),
    Case("stream-options-string", chat(stream=True, stream_options="usage"), 400, "stream_options"),
    Case("tool-choice-number", chat(tools=[TOOL], tool_choice=3), 400, "tool_choice"),
    Case("tool-choice-type-unknown", chat(tools=[TOOL], tool_choice={"type": "retrieval",
                                                                     "function": {"name": "get_weather"}}),
         400, "tool_choice.type"),
    Case("tool-parameters-required-string", chat(tools=[tool_fn(name="f", parameters={
        "type": "object", "properties": {"a": {"type": "string"}}, "required": "a"})]),
        400, "tools[0].function.parameters.required"),
    Case("function-call-without-functions", chat(function_call="auto"), 400, "function_call"),
    Case("function-call-required", chat(functions=[TOOL["function"]], function_call="required"), 400, "function_call"),
    Case("tool-choice-with-functions", chat(functions=[TOOL["function"]], tool_choice="auto"), 400, "tool_choice"),
    Case("completion-suffix", {"prompt": "a", "suffix": "b"}, 400, "suffix", path=COMPLETIONS,
         code="fim_not_supported"),
    Case("completion-logprobs-high", {"prompt": "a", "logprobs": 6}, 400, "logprobs", path=COMPLETIONS),
    Case("embeddings-empty", {"input": ""}, 400, "input[0]", path="/v1/embeddings"),
    Case("embeddings-bad-format", {"input": "a", "encoding_format": "int8"}, 400, "encoding_format",
         path="/v1/embeddings"),
    Case("embeddings-other-model", {"input": "a", "model": "gpt-4"}, 404, "model", path="/v1/embeddings",
         code="model_not_found"),
    Case("completion-best-of", {"prompt": "a", "best_of": 3}, 400, "best_of", path=COMPLETIONS),
    Case("completion-temperature-high", {"prompt": "a", "temperature": 9}, 400, "temperature", path=COMPLETIONS),
]


@pytest.fixture(scope="module")
def base_url() -> Iterator[str]:
    args = ["--n-ctx", str(N_CTX), "--max-body-mb", "0.05", "--strict-model-name", "--alias", "tiny"]
    with live_server(args) as url:
        yield url


@pytest.fixture(scope="module")
def http(base_url: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=base_url, timeout=60) as client:
        yield client


def test_enough_cases() -> None:
    assert len(CASES) >= 30
    assert len({c.id for c in CASES}) == len(CASES)


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_request(http: httpx.Client, case: Case) -> None:
    if case.method == "GET":
        response = http.get(case.path)
    elif isinstance(case.body, bytes):
        response = http.post(case.path, content=case.body, headers={"content-type": "application/json"})
    else:
        response = http.post(case.path, json=case.body)
    assert response.status_code == case.status, response.text
    error = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert error["type"] == case.type
    assert error["param"] == case.param
    if case.code is not None:
        assert error["code"] == case.code
    assert error["message"] and "Traceback" not in error["message"]


def test_context_error_gives_the_numbers(http: httpx.Client) -> None:
    response = http.post(CHAT, json=chat(messages=[{"role": "user", "content": "word " * (N_CTX * 2)}]))
    message = response.json()["error"]["message"]
    assert str(N_CTX) in message
    prompt_tokens = int(message.split("the prompt has ")[1].split()[0])
    assert prompt_tokens > N_CTX


@pytest.mark.parametrize(
    "body",
    [
        chat(messages=[{"role": "developer", "content": "Be brief."}, USER]),
        chat(messages=[{"role": "user", "content": [{"type": "text", "text": "Hi"}, {"type": "text", "text": "there"}]}]),
        chat(model="tiny", top_k=10, min_p=0.1, repeat_penalty=1.1, seed=3, stop="\n", user="someone"),
        chat(messages=[USER, {"role": "assistant", "content": None, "tool_calls": [CALL]},
                       {"role": "tool", "tool_call_id": "call_1", "content": "sunny"}], tools=[TOOL]),
        chat(functions=[TOOL["function"]], function_call="none"),
        chat(response_format={"type": "json_object"}, max_tokens=2),
        chat(tools=[{"type": "function", "function": {"name": "f", "parameters": {  # short: n_ctx is 256
            "type": "object", "$defs": {"S": {"type": "integer"}}, "properties": {
                "a": {"$ref": "#/$defs/S"}, "b": {"anyOf": [{"type": "string"}, {"type": "null"}]},
                "c": {"type": "number", "minimum": 0, "exclusiveMinimum": True},  # draft 4 style
                "d": {"items": [{"type": "string"}]}, "e": {"additionalProperties": {"type": ["integer", "null"]}}},
            "additionalProperties": False}}}], max_tokens=2),
    ],
    ids=["developer-role", "text-parts", "extra-sampling-fields", "tool-round-trip", "legacy-functions", "json-object",
         "rich-valid-schema"],
)
def test_good_requests_pass(http: httpx.Client, body: dict[str, Any]) -> None:
    response = http.post(CHAT, json=body)
    assert response.status_code == 200, response.text
    reply = response.json()
    assert reply["object"] == "chat.completion" and reply["model"] == "tiny"
    assert reply["usage"]["completion_tokens"] >= 1


def test_json_object_format_gives_json(http: httpx.Client) -> None:
    body = chat(messages=[{"role": "user", "content": "Describe a cat as JSON."}],
                response_format={"type": "json_object"}, max_tokens=40, temperature=0)
    reply = http.post(CHAT, json=body).json()
    content = reply["choices"][0]["message"]["content"]
    if reply["choices"][0]["finish_reason"] == "stop":
        assert isinstance(json.loads(content), dict)
    else:
        assert content.lstrip().startswith("{")


def test_server_healthy_after_bad_requests(http: httpx.Client) -> None:
    for case in CASES[:10]:
        body = case.body if isinstance(case.body, bytes) else json.dumps(case.body).encode()
        http.post(case.path, content=body, headers={"content-type": "application/json"})
    assert http.get("/health").json() == {
        "status": "ok", "model": "tiny", "queue": 0, "slots_busy": 0, "slots_total": 4}
    reply = http.post(CHAT, json=chat(max_tokens=2, temperature=0)).json()
    assert reply["usage"]["completion_tokens"] == 2


@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": "Bearer wrong"}, {"Authorization": "Basic sesame"}, {"Authorization": "sesame"}],
    ids=["missing", "wrong-key", "wrong-scheme", "no-scheme"],
)
def test_wrong_or_missing_api_key_is_401(keyed_url: str, headers: dict[str, str]) -> None:
    response = httpx.post(f"{keyed_url}{CHAT}", json=chat(), headers=headers, timeout=30)
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == "Bearer"
    error = response.json()["error"]
    assert error["type"] == "invalid_request_error" and error["param"] is None
    assert error["code"] == "invalid_api_key" and "--api-key" in error["message"]
    ok = httpx.post(f"{keyed_url}{CHAT}", json=chat(), headers={"Authorization": "Bearer sesame"}, timeout=60)
    assert ok.status_code == 200


@pytest.fixture(scope="module")
def keyed_url() -> Iterator[str]:
    with live_server(["--n-ctx", str(N_CTX), "--api-key", "sesame"]) as url:
        yield url
