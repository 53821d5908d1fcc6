"""tool_choice, parallel_tool_calls, response_format and strict schemas, end to end.

Real engine, default weights (SmolLM2-135M, no tool training), every main
dialect through a template override. Under a grammar even this model writes
calls that parse and validate, so these tests assert structure, never wisdom.
Part runs in-process (LocalModel, one per dialect), part through a live server
and the official `openai` client.

Cost: each dialect answers a rotating share of the schema set (all of them on
the server); LOCALTOOLS_E2E_FULL=1 runs the whole set on every dialect.
"""

from __future__ import annotations

import json
import logging
import os
from typing import Any, Iterator

import jsonschema
import pytest
from openai import BadRequestError, OpenAI

from tests.e2e_dialects import MAIN_DIALECTS, MainDialect, load_local_model
from tests.live_server import live_server

MAX_TOKENS = 100
FULL = os.environ.get("LOCALTOOLS_E2E_FULL") == "1"

# Varied parameter schemas: nested objects, enums, bounded arrays, optional
# fields, bounded numbers and integers, booleans, anyOf, const, string length
# bounds, formats, and tools without parameters. (Free strings are bounded
# where greedy decoding made this model repeat itself until max_tokens.)
SCHEMAS: dict[str, dict[str, Any] | None] = {
    "get_weather": {
        "type": "object",
        "properties": {
            "city": {"type": "string", "minLength": 2, "maxLength": 30},
            "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
        },
        "required": ["city", "unit"],
    },
    "create_event": {
        "type": "object",
        "properties": {
            "title": {"type": "string", "maxLength": 40},
            "when": {
                "type": "object",
                "properties": {
                    "date": {"type": "string", "format": "date"},
                    "hour": {"type": "integer", "minimum": 0, "maximum": 23},
                },
                "required": ["date", "hour"],
            },
        },
        "required": ["title", "when"],
    },
    "tag_items": {
        "type": "object",
        "properties": {"tags": {"type": "array", "items": {"type": "string", "maxLength": 10}, "minItems": 1, "maxItems": 3}},
        "required": ["tags"],
    },
    "search": {
        "type": "object",
        "properties": {
            "query": {"type": "string", "maxLength": 40},
            "limit": {"type": "integer", "minimum": 1, "maximum": 50},
            "exact": {"type": "boolean"},
        },
        "required": ["query"],
    },
    "set_temperature": {
        "type": "object",
        "properties": {"value": {"type": "number", "minimum": -10, "maximum": 40}},
        "required": ["value"],
    },
    "toggle": {"type": "object", "properties": {"on": {"type": "boolean"}}, "required": ["on"]},
    "lookup": {
        "type": "object",
        "properties": {"key": {"anyOf": [{"type": "string", "maxLength": 8}, {"type": "integer"}]}},
        "required": ["key"],
    },
    "set_mode": {
        "type": "object",
        "properties": {"mode": {"const": "fast"}, "level": {"type": "integer", "enum": [1, 2, 3]}},
        "required": ["mode", "level"],
    },
    "get_time": {"type": "object", "properties": {}},
    "send_email": {
        "type": "object",
        "properties": {
            "to": {"type": "string", "minLength": 3, "maxLength": 40},
            "subject": {"type": "string", "maxLength": 20},
            "cc": {"type": "array", "items": {"type": "string", "maxLength": 30}, "maxItems": 2},
        },
        "required": ["to", "subject"],
    },
    "move": {
        "type": "object",
        "properties": {
            "points": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {"x": {"type": "number"}, "y": {"type": "number"}},
                    "required": ["x", "y"],
                },
                "minItems": 2,
                "maxItems": 2,
            }
        },
        "required": ["points"],
    },
    "ping": None,  # no `parameters` at all
}
NAMES = list(SCHEMAS)


def tool(name: str) -> dict[str, Any]:
    fn: dict[str, Any] = {"name": name, "description": name.replace("_", " ")}
    if SCHEMAS[name] is not None:
        fn["parameters"] = SCHEMAS[name]
    return {"type": "function", "function": fn}


def schema_of(name: str) -> dict[str, Any]:
    return SCHEMAS[name] or {"type": "object", "maxProperties": 0}


def assert_valid_calls(message: dict[str, Any], offered: list[str]) -> list[dict[str, Any]]:
    """Every call names an offered tool and its arguments (a JSON string) validate."""
    calls = message.get("tool_calls") or []
    for call in calls:
        name = call["function"]["name"]
        assert name in offered, f"{name!r} was not offered"
        assert call["id"] and call["type"] == "function"
        args_text = call["function"]["arguments"]
        assert isinstance(args_text, str)
        jsonschema.validate(json.loads(args_text), schema_of(name))
    return calls


def share_of_schemas(index: int) -> list[str]:
    """The schemas dialect number `index` answers (a rotating third; all with FULL)."""
    if FULL:
        return NAMES
    return [NAMES[(index * 3 + k) % len(NAMES)] for k in range(3)]


# ---------------------------------------------------------------- in-process, every main dialect


@pytest.fixture(scope="module", params=MAIN_DIALECTS, ids=[d.key for d in MAIN_DIALECTS])
def dialect_model(request: pytest.FixtureRequest) -> Iterator[tuple[MainDialect, Any]]:
    d: MainDialect = request.param
    if not d.available():
        pytest.skip(f"template missing: {d.template}")
    model = load_local_model(d)
    try:
        yield d, model
    finally:
        model.close()


def chat(model: Any, user: str, names: list[str], **kwargs: Any) -> dict[str, Any]:
    kwargs.setdefault("max_tokens", MAX_TOKENS)
    return model.chat(
        [{"role": "user", "content": user}], tools=[tool(n) for n in names], temperature=0, seed=7, **kwargs
    )


def test_required_returns_valid_calls_for_varied_schemas(dialect_model: tuple[MainDialect, Any]) -> None:
    d, model = dialect_model
    for name in share_of_schemas(MAIN_DIALECTS.index(d)):
        reply = chat(model, f"Please {name.replace('_', ' ')}.", [name], tool_choice="required", parallel_tool_calls=False)
        choice = reply["choices"][0]
        calls = assert_valid_calls(choice["message"], [name])
        assert len(calls) == 1, (name, choice)
        assert choice["finish_reason"] == "tool_calls"
        assert choice["message"]["content"] is None


def test_named_choice_returns_exactly_that_tool(dialect_model: tuple[MainDialect, Any]) -> None:
    _, model = dialect_model
    offered = ["get_weather", "toggle", "set_mode"]
    reply = chat(model, "What is the weather in Paris?", offered,
                 tool_choice={"type": "function", "function": {"name": "set_mode"}})
    calls = assert_valid_calls(reply["choices"][0]["message"], offered)
    assert [c["function"]["name"] for c in calls] == ["set_mode"]
    assert reply["choices"][0]["finish_reason"] == "tool_calls"


def test_none_returns_content_only(dialect_model: tuple[MainDialect, Any]) -> None:
    _, model = dialect_model
    reply = chat(model, "What is the weather in Paris?", ["get_weather"], tool_choice="none", max_tokens=24)
    message = reply["choices"][0]["message"]
    assert "tool_calls" not in message
    assert isinstance(message["content"], str)
    assert reply["choices"][0]["finish_reason"] in ("stop", "length")


def test_parallel_false_gives_one_call(dialect_model: tuple[MainDialect, Any]) -> None:
    _, model = dialect_model
    offered = ["get_weather", "toggle", "get_time"]
    reply = chat(model, "Weather in Paris and in Rome, and the time?", offered,
                 tool_choice="required", parallel_tool_calls=False)
    calls = assert_valid_calls(reply["choices"][0]["message"], offered)
    assert len(calls) == 1


# The model has no tool training; it writes the trigger only in the formats it
# imitates from a few-shot history. Elsewhere (Llama 3's bare JSON, Mistral's
# [TOOL_CALLS], Functionary v3.2 whose prompt ends in '>>>' so `auto` has no
# grammar) it answers in text, which tests nothing about the lazy grammar.
AUTO_DIALECTS = {"chatml-function", "hermes", "qwen3-coder", "firefunction-v2", "functionary-v3.1"}
WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Get the weather forecast",
        "parameters": {
            "type": "object",
            "properties": {
                "city": {"type": "string", "maxLength": 20},
                "days": {"type": "integer", "minimum": 1, "maximum": 7},
            },
            "required": ["city", "days"],
        },
    },
}


def few_shot_weather() -> list[dict[str, Any]]:
    """Three earlier turns that called get_weather, then a new question."""
    messages: list[dict[str, Any]] = []
    for i, (city, days) in enumerate([("Paris", 2), ("Rome", 3), ("Berlin", 1)]):
        call_id = f"call{i}0000"  # 9 alphanumerics: valid for Mistral too
        messages += [
            {"role": "user", "content": f"Weather in {city} for {days} days?"},
            {"role": "assistant", "content": None, "tool_calls": [{
                "id": call_id, "type": "function",
                "function": {"name": "get_weather", "arguments": json.dumps({"city": city, "days": days})},
            }]},
            {"role": "tool", "tool_call_id": call_id, "name": "get_weather", "content": "sunny"},
            {"role": "assistant", "content": "It is sunny."},
        ]
    return messages + [{"role": "user", "content": "Weather in Oslo for 4 days?"}]


def test_auto_started_call_completes_validly(dialect_model: tuple[MainDialect, Any]) -> None:
    d, model = dialect_model
    if d.key not in AUTO_DIALECTS:
        pytest.skip("this model does not write this dialect's trigger unprompted")
    plan = model.runtime.dialect.grammar([WEATHER], "auto", True)
    assert plan is not None and plan.lazy and plan.triggers
    reply = model.chat(few_shot_weather(), tools=[WEATHER], tool_choice="auto", temperature=0, max_tokens=60)
    message = reply["choices"][0]["message"]
    calls = message.get("tool_calls") or []
    assert calls, f"no call started: {message}"
    for call in calls:
        assert call["function"]["name"] == "get_weather"
        jsonschema.validate(json.loads(call["function"]["arguments"]), WEATHER["function"]["parameters"])


def test_non_strict_unsupported_schema_is_relaxed_with_a_warning(
    dialect_model: tuple[MainDialect, Any], caplog: pytest.LogCaptureFixture
) -> None:
    d, model = dialect_model
    if d.key != "hermes":
        pytest.skip("one dialect is enough: relaxation happens before any dialect syntax")
    schema = {
        "type": "object",
        "properties": {"code": {"type": "string", "pattern": "^(?!x)[a-z]{3}$"}, "n": {"type": "number", "minimum": 1}},
        "required": ["code", "n"],
    }
    relaxed = {"type": "function", "function": {"name": "check", "parameters": schema}}
    with caplog.at_level(logging.WARNING):
        reply = model.chat([{"role": "user", "content": "check abc"}], tools=[relaxed],
                           tool_choice="required", temperature=0, max_tokens=60, parallel_tool_calls=False)
    calls = reply["choices"][0]["message"]["tool_calls"]
    assert [c["function"]["name"] for c in calls] == ["check"]
    assert set(json.loads(calls[0]["function"]["arguments"])) == {"code", "n"}
    warnings = " ".join(r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING)
    assert "pattern" in warnings and "minimum" in warnings


# ---------------------------------------------------------------- live server + openai client


@pytest.fixture(scope="module")
def client() -> Iterator[OpenAI]:
    with live_server(["--n-ctx", "4096"]) as base_url:
        yield OpenAI(base_url=f"{base_url}/v1", api_key="unused", max_retries=0, timeout=120)


def server_chat(client: OpenAI, names: list[str], **kwargs: Any) -> Any:
    kwargs.setdefault("max_tokens", MAX_TOKENS)
    kwargs.setdefault("messages", [{"role": "user", "content": "Please help."}])
    return client.chat.completions.create(
        model="smollm2", tools=[tool(n) for n in names], temperature=0, seed=7, **kwargs
    )


@pytest.mark.parametrize("name", NAMES)
def test_server_required_call_validates(client: OpenAI, name: str) -> None:
    resp = server_chat(client, [name], tool_choice="required", parallel_tool_calls=False,
                       messages=[{"role": "user", "content": f"Please {name.replace('_', ' ')}."}])
    choice = resp.choices[0]
    assert choice.finish_reason == "tool_calls"
    assert choice.message.content is None
    calls = assert_valid_calls(choice.message.model_dump(), [name])
    assert len(calls) == 1


@pytest.mark.parametrize("parameters", [{"type": "object", "properties": {}}, {}])
def test_server_parameterless_call_has_exactly_empty_braces(client: OpenAI, parameters: dict[str, Any]) -> None:
    """OpenAI writes a call without arguments as "{}"; so must we, byte for byte."""
    clock = {"type": "function", "function": {"name": "get_clock", "description": "The time now", "parameters": parameters}}
    for seed, stream in enumerate((False, True, False, True, False, True)):
        resp = client.chat.completions.create(  # hot sampling: whitespace inside the braces would show
            model="smollm2", tools=[clock], tool_choice="required", parallel_tool_calls=False, temperature=2.0,
            seed=seed, max_tokens=40, messages=[{"role": "user", "content": "What time is it?"}], stream=stream,
        )
        if stream:
            args = "".join(
                tc.function.arguments or ""
                for chunk in resp if chunk.choices
                for tc in (chunk.choices[0].delta.tool_calls or [])
            )
        else:
            args = resp.choices[0].message.tool_calls[0].function.arguments
        assert args == "{}", (stream, args)


def test_server_required_with_parallel_calls_all_validate(client: OpenAI) -> None:
    offered = ["get_weather", "toggle", "set_mode"]
    resp = server_chat(client, offered, tool_choice="required", max_tokens=160,
                       messages=[{"role": "user", "content": "Weather in Paris, then turn it on."}])
    choice = resp.choices[0]
    message = choice.model_dump()["message"]
    calls = message.get("tool_calls") or []
    assert calls
    # a call cut by max_tokens is closed but may miss fields; the complete ones validate
    complete = calls if choice.finish_reason == "tool_calls" else calls[:-1]
    assert_valid_calls({"tool_calls": complete}, offered)
    for call in calls:
        assert isinstance(json.loads(call["function"]["arguments"]), dict)
    assert "<tool_call>" not in (message["content"] or "")


def test_server_named_none_and_parallel_false(client: OpenAI) -> None:
    offered = ["get_weather", "toggle", "search"]
    named = server_chat(client, offered, tool_choice={"type": "function", "function": {"name": "toggle"}})
    assert [c.function.name for c in named.choices[0].message.tool_calls] == ["toggle"]
    assert_valid_calls(named.choices[0].message.model_dump(), offered)

    none = server_chat(client, offered, tool_choice="none", max_tokens=20)
    assert not none.choices[0].message.tool_calls
    assert isinstance(none.choices[0].message.content, str)

    single = server_chat(client, offered, tool_choice="required", parallel_tool_calls=False)
    assert len(single.choices[0].message.tool_calls) == 1


def test_server_response_format_json_object(client: OpenAI) -> None:
    resp = client.chat.completions.create(
        model="smollm2", messages=[{"role": "user", "content": "Describe Paris as JSON."}],
        response_format={"type": "json_object"}, temperature=0, max_tokens=120,
    )
    assert resp.choices[0].finish_reason == "stop", resp.choices[0].message.content
    assert isinstance(json.loads(resp.choices[0].message.content), dict)


@pytest.mark.parametrize("strict", [False, True])
def test_server_response_format_json_schema(client: OpenAI, strict: bool) -> None:
    schema = {
        "type": "object",
        "properties": {
            "city": {"type": "string", "maxLength": 20},
            "population": {"type": "integer", "minimum": 0, "maximum": 100},
            "rainy": {"type": "boolean"},
            "kind": {"type": "string", "enum": ["town", "city"]},
        },
        "required": ["city", "population", "rainy", "kind"],
        "additionalProperties": False,
    }
    resp = client.chat.completions.create(
        model="smollm2", messages=[{"role": "user", "content": "Describe Paris."}], temperature=0, max_tokens=120,
        response_format={"type": "json_schema", "json_schema": {"name": "place", "schema": schema, "strict": strict}},
    )
    jsonschema.validate(json.loads(resp.choices[0].message.content), schema)


UNHONOURABLE = {
    "pattern": {"type": "object", "properties": {"code": {"type": "string", "pattern": "^(?!x)[a-z]+$"}}},
    "ref": {"type": "object", "properties": {"where": {"$ref": "#/$defs/Missing"}}},
    "number-bounds": {"type": "object", "properties": {"p": {"type": "number", "minimum": 0, "maximum": 1}}},
}


@pytest.mark.parametrize("kind", list(UNHONOURABLE))
def test_strict_tool_with_unenforceable_schema_is_a_clear_400(client: OpenAI, kind: str) -> None:
    strict_tool = {"type": "function",
                   "function": {"name": "f", "parameters": UNHONOURABLE[kind], "strict": True}}
    with pytest.raises(BadRequestError) as info:
        client.chat.completions.create(model="smollm2", messages=[{"role": "user", "content": "hi"}],
                                       tools=[strict_tool], tool_choice="required", max_tokens=5)
    err = info.value.body
    assert err["param"] == "tools[0].function.parameters"
    assert err["code"] == "unsupported_schema"
    assert "strict" in err["message"] and {"pattern": "pattern", "ref": "$ref", "number-bounds": "minimum"}[kind] in err["message"]


def test_strict_response_format_with_unenforceable_schema_is_a_400(client: OpenAI) -> None:
    with pytest.raises(BadRequestError) as info:
        client.chat.completions.create(
            model="smollm2", messages=[{"role": "user", "content": "hi"}], max_tokens=5,
            response_format={"type": "json_schema",
                             "json_schema": {"name": "x", "schema": UNHONOURABLE["pattern"], "strict": True}},
        )
    assert info.value.body["param"] == "response_format.json_schema.schema"


@pytest.mark.parametrize("kind", list(UNHONOURABLE))
def test_same_schema_without_strict_is_served(client: OpenAI, kind: str) -> None:
    loose_tool = {"type": "function", "function": {"name": "f", "parameters": UNHONOURABLE[kind]}}
    resp = client.chat.completions.create(model="smollm2", messages=[{"role": "user", "content": "hi"}],
                                          tools=[loose_tool], tool_choice="required", max_tokens=60, temperature=0,
                                          parallel_tool_calls=False)
    calls = resp.choices[0].message.tool_calls
    assert [c.function.name for c in calls] == ["f"]
    assert isinstance(json.loads(calls[0].function.arguments), dict)
