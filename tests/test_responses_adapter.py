"""The Responses API translator: requests into chat bodies, replies and streams back out.

Outputs are validated with the `openai` package's own Response and stream event types.
"""

from __future__ import annotations

import json

import pytest
from openai.types.responses import Response, ResponseStreamEvent
from pydantic import TypeAdapter

from localtools.adapters.responses import (
    assistant_message,
    response_from_completion,
    translate_request,
)
from localtools.adapters.responses_stream import ResponsesStream
from localtools.adapters.translate import TranslationError
from tests.chat_replies import call, chunks, completion, message

EVENTS = TypeAdapter(ResponseStreamEvent)
WEATHER = {"type": "function", "name": "get_weather", "description": "Weather in a city",
           "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}


def refused(body, previous=None) -> TranslationError:
    with pytest.raises(TranslationError) as info:
        translate_request(body, previous)
    assert info.value.status in (400, 404)
    return info.value


# ---------------------------------------------------------------- requests


def test_string_input_with_instructions_and_sampling():
    req = translate_request({"model": "m", "input": "Hi", "instructions": "Be brief.", "max_output_tokens": 9,
                             "temperature": 0.2, "top_p": 0.5})
    assert req.chat["messages"] == [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}]
    assert req.chat["max_completion_tokens"] == 9
    assert (req.chat["temperature"], req.chat["top_p"], req.chat["model"]) == (0.2, 0.5, "m")
    assert req.history == [{"role": "user", "content": "Hi"}]  # instructions are not carried over
    assert req.store is True and req.stream is False


def test_items_merge_calls_into_one_assistant_turn_and_outputs_answer_them():
    items = [
        {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "Weather?"}]},
        {"type": "function_call", "call_id": "c1", "name": "get_weather", "arguments": '{"city": "Oslo"}'},
        {"type": "function_call", "call_id": "c2", "name": "get_weather", "arguments": '{"city": "Rome"}'},
        {"type": "function_call_output", "call_id": "c1", "output": "cold"},
        {"type": "function_call_output", "call_id": "c2", "output": [{"type": "input_text", "text": "warm"}]},
    ]
    msgs = translate_request({"input": items, "tools": [WEATHER]}).chat["messages"]
    assert [m["role"] for m in msgs] == ["user", "assistant", "tool", "tool"]
    assert [c["id"] for c in msgs[1]["tool_calls"]] == ["c1", "c2"]
    assert msgs[1]["content"] is None
    assert msgs[3] == {"role": "tool", "tool_call_id": "c2", "content": "warm"}


def test_reasoning_item_goes_with_the_next_assistant_turn():
    items = [{"role": "user", "content": "q"},
             {"type": "reasoning", "id": "rs_1", "summary": [], "content": [{"type": "reasoning_text", "text": "hmm"}]},
             {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "a"}]},
             {"role": "user", "content": "q2"}]
    msgs = translate_request({"input": items}).chat["messages"]
    assert msgs[1] == {"role": "assistant", "content": "a", "reasoning_content": "hmm"}


def test_previous_conversation_comes_first_and_its_call_ids_count():
    previous = [{"role": "user", "content": "Weather?"},
                {"role": "assistant", "content": None, "tool_calls": [call("c9", "get_weather", {"city": "x"})]}]
    req = translate_request({"input": [{"type": "function_call_output", "call_id": "c9", "output": "sun"}],
                             "previous_response_id": "resp_1", "instructions": "new"}, previous)
    assert req.chat["messages"][0] == {"role": "system", "content": "new"}
    assert req.chat["messages"][1:] == previous + [{"role": "tool", "tool_call_id": "c9", "content": "sun"}]
    assert req.echo["previous_response_id"] == "resp_1"


def test_tools_and_forced_choices_map_to_chat_forms():
    req = translate_request({"input": "x", "tools": [WEATHER], "tool_choice": "required", "parallel_tool_calls": False})
    assert req.chat["tools"] == [{"type": "function", "function": {k: WEATHER[k] for k in ("name", "description", "parameters")}}]
    assert req.chat["tool_choice"] == "required" and req.chat["parallel_tool_calls"] is False
    named = translate_request({"input": "x", "tools": [WEATHER], "tool_choice": {"type": "function", "name": "get_weather"}})
    assert named.chat["tool_choice"] == {"type": "function", "function": {"name": "get_weather"}}
    other = dict(WEATHER, name="get_time")
    allowed = translate_request({"input": "x", "tools": [WEATHER, other], "tool_choice": {
        "type": "allowed_tools", "mode": "required", "tools": [{"type": "function", "name": "get_time"}]}})
    assert allowed.chat["tool_choice"] == "required"
    assert [t["function"]["name"] for t in allowed.chat["tools"]] == ["get_time"]


def test_text_format_reasoning_and_stream_options():
    schema = {"type": "object", "properties": {"n": {"type": "integer"}}}
    req = translate_request({"input": "x", "stream": True, "reasoning": {"effort": "none"},
                             "text": {"format": {"type": "json_schema", "name": "out", "schema": schema, "strict": True}}})
    assert req.chat["response_format"] == {"type": "json_schema", "json_schema": {"name": "out", "schema": schema, "strict": True}}
    assert req.chat["chat_template_kwargs"] == {"enable_thinking": False, "reasoning_effort": "none"}
    assert req.chat["stream_options"] == {"include_usage": True} and req.stream


@pytest.mark.parametrize("body, param", [
    ({"input": [{"type": "function_call_output", "call_id": "nope", "output": "x"}]}, "input[0].call_id"),
    ({"input": [{"type": "computer_call_output", "call_id": "c"}]}, "input[0].type"),
    ({"input": [{"type": "item_reference", "id": "msg_1"}]}, "input[0].type"),
    ({"input": [{"role": "user", "content": [{"type": "input_image", "image_url": "http://x"}]}]}, "input[0].content[0].type"),
    ({"input": "x", "tools": [{"type": "web_search"}]}, "tools[0].type"),
    ({"input": "x", "tools": [WEATHER], "tool_choice": {"type": "file_search"}}, "tool_choice.type"),
    ({"input": "x", "tools": [WEATHER], "tool_choice": "sometimes"}, "tool_choice"),
    ({"input": "x", "tool_choice": "required"}, "tool_choice"),
    ({"input": 5}, "input"),
    ({"input": "x", "max_output_tokens": "10"}, "max_output_tokens"),
    ({"input": "x", "temperature": 3}, "temperature"),
    ({"input": "x", "stream": "yes"}, "stream"),
    ({"input": [{"role": "wizard", "content": "x"}]}, "input[0].role"),
    ({"input": [{"type": "function_call", "call_id": "c", "name": "f", "arguments": "{bad"}]}, "input[0].arguments"),
    ({"input": "x", "background": True}, "background"),
    ({"input": "x", "text": {"format": {"type": "json_schema"}}}, "text.format.schema"),
    ({}, "input"),
])
def test_bad_input_is_refused_naming_the_param(body, param):
    assert refused(body).param == param


def test_builtin_tool_refusal_explains_why():
    err = refused({"input": "x", "tools": [{"type": "file_search", "vector_store_ids": []}]})
    assert "built-in" in err.message and "function" in err.message and err.code == "unsupported_tool_type"


# ---------------------------------------------------------------- replies


def test_reply_with_text_is_a_valid_response():
    req = translate_request({"input": "Hi", "max_output_tokens": 5, "metadata": {"k": "v"}})
    body = response_from_completion(completion(message("Hello!")), req.echo)
    resp = Response.model_validate(body)
    assert resp.output_text == "Hello!" and resp.status == "completed"
    assert resp.usage.input_tokens == 11 and resp.usage.output_tokens == 7
    assert resp.usage.input_tokens_details.cached_tokens == 2
    assert resp.max_output_tokens == 5 and resp.metadata == {"k": "v"}


def test_reply_with_calls_and_reasoning_gives_items_in_order():
    calls = [call("call_a", "get_weather", {"city": "Oslo"}), call("call_b", "get_weather", {"city": "Rome"})]
    req = translate_request({"input": "x", "tools": [WEATHER]})
    resp = Response.model_validate(response_from_completion(
        completion(message(None, calls, reasoning="think"), "tool_calls"), req.echo))
    assert [i.type for i in resp.output] == ["reasoning", "function_call", "function_call"]
    assert resp.output[0].content[0].text == "think"
    assert [(i.call_id, json.loads(i.arguments)["city"]) for i in resp.output[1:]] == [("call_a", "Oslo"), ("call_b", "Rome")]
    assert resp.tools[0].name == "get_weather"


def test_cut_by_max_tokens_is_incomplete():
    resp = Response.model_validate(response_from_completion(completion(message("Hel"), "length"),
                                                            translate_request({"input": "x"}).echo))
    assert resp.status == "incomplete" and resp.incomplete_details.reason == "max_output_tokens"
    assert resp.output[0].status == "incomplete"


def test_assistant_message_from_output_continues_the_conversation():
    calls = [call("call_a", "get_weather", {"city": "Oslo"})]
    body = response_from_completion(completion(message("ok", calls), "tool_calls"), {})
    assert assistant_message(body["output"]) == {"role": "assistant", "content": "ok", "tool_calls": calls}


# ---------------------------------------------------------------- streams


def run_stream(stream_chunks, echo=None):
    s = ResponsesStream("resp_1", "smol", echo or {}, 1700000000)
    events = s.start()
    for c in stream_chunks:
        events += s.feed(c)
    events += s.finish()
    return s, events


def strip_ids(output):
    return [{k: v for k, v in item.items() if k != "id"} for item in output]


CASES = [
    ("Hello there, how are you?", None, "", "stop"),
    ("  \n", [call("call_a", "get_weather", {"city": "Oslo"})], "", "tool_calls"),
    ("Let me check. ", [call("call_a", "get_weather", {"city": "Oslo"}), call("call_b", "get_weather", {"city": "Rome"})],
     "I should call", "tool_calls"),
    ("Cut sho", None, "", "length"),
    ("", None, "", "stop"),
]


@pytest.mark.parametrize("content, calls, reasoning, finish", CASES)
@pytest.mark.parametrize("size", [1, 4, 100])
def test_stream_events_are_valid_and_agree_with_the_whole_reply(content, calls, reasoning, finish, size):
    echo = translate_request({"input": "x", "tools": [WEATHER]}).echo
    s, events = run_stream(chunks(content, calls, reasoning, finish, size), echo)
    for e in events:
        EVENTS.validate_python(e)
    assert [e["sequence_number"] for e in events] == list(range(len(events)))
    assert events[0]["type"] == "response.created" and events[1]["type"] == "response.in_progress"
    assert events[-1]["type"] == ("response.incomplete" if finish == "length" else "response.completed")
    whole = response_from_completion(completion(message(content, calls, reasoning or None), finish), echo)
    streamed = Response.model_validate(events[-1]["response"])
    assert strip_ids(s.response["output"]) == strip_ids(whole["output"])
    assert streamed.status == whole["status"] and s.response["usage"] == whole["usage"]


def test_stream_event_order_for_text_then_call():
    _, events = run_stream(chunks("Hi", [call("call_a", "get_weather", {"city": "Oslo"})], finish="tool_calls", size=100))
    kinds = [e["type"] for e in events]
    assert kinds == [
        "response.created", "response.in_progress",
        "response.output_item.added", "response.content_part.added", "response.output_text.delta",
        "response.output_text.done", "response.content_part.done", "response.output_item.done",
        "response.output_item.added", "response.function_call_arguments.delta",
        "response.function_call_arguments.done", "response.output_item.done",
        "response.completed",
    ]
    deltas = "".join(e["delta"] for e in events if e["type"] == "response.function_call_arguments.delta")
    done = next(e for e in events if e["type"] == "response.function_call_arguments.done")
    assert deltas == done["arguments"] == '{"city": "Oslo"}'
    added = [e for e in events if e["type"] == "response.output_item.added"][1]
    assert added["item"]["call_id"] == "call_a" and added["item"]["name"] == "get_weather"
    assert added["output_index"] == 1


def test_whitespace_before_a_call_is_never_streamed():
    _, events = run_stream(chunks("\n\n", [call("call_a", "get_weather", {"city": "Oslo"})], finish="tool_calls", size=1))
    assert not [e for e in events if e["type"] == "response.output_text.delta"]
