"""The Anthropic Messages translator, validated with the `anthropic` package's own types."""

from __future__ import annotations

import pytest
from anthropic.types import Message, RawMessageStreamEvent
from pydantic import TypeAdapter

from localtools.adapters.anthropic import (
    MessagesStream,
    message_from_completion,
    translate_request,
)
from localtools.adapters.translate import TranslationError
from tests.chat_replies import call, chunks, completion, message

EVENTS = TypeAdapter(RawMessageStreamEvent)
WEATHER = {"name": "get_weather", "description": "Weather in a city",
           "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}


def refused(body) -> TranslationError:
    with pytest.raises(TranslationError) as info:
        translate_request(body)
    return info.value


def test_system_blocks_sampling_and_stop_sequences():
    chat = translate_request({"model": "m", "max_tokens": 12, "system": [{"type": "text", "text": "Be brief."}],
                              "messages": [{"role": "user", "content": "Hi"}], "temperature": 0.5, "top_k": 4,
                              "stop_sequences": ["END"]})
    assert chat["messages"] == [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}]
    assert (chat["max_tokens"], chat["temperature"], chat["top_k"], chat["stop"]) == (12, 0.5, 4, ["END"])


def test_tool_round_trip_blocks_become_calls_and_results():
    chat = translate_request({"max_tokens": 5, "tools": [WEATHER], "messages": [
        {"role": "user", "content": "Weather?"},
        {"role": "assistant", "content": [{"type": "thinking", "thinking": "hm", "signature": "s"},
                                          {"type": "text", "text": "Checking."},
                                          {"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {"city": "Oslo"}}]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_1", "content": [{"type": "text", "text": "no"}],
                                      "is_error": True},
                                     {"type": "text", "text": "And now?"}]},
    ]})
    msgs = chat["messages"]
    assert msgs[1]["tool_calls"] == [{"id": "toolu_1", "type": "function",
                                      "function": {"name": "get_weather", "arguments": '{"city": "Oslo"}'}}]
    assert msgs[1]["content"] == "Checking." and msgs[1]["reasoning_content"] == "hm"
    assert msgs[2] == {"role": "tool", "tool_call_id": "toolu_1", "content": "Error: no"}
    assert msgs[3] == {"role": "user", "content": "And now?"}
    assert chat["tools"][0]["function"]["parameters"] == WEATHER["input_schema"]


@pytest.mark.parametrize("choice, expected, parallel", [
    ({"type": "any"}, "required", None),
    ({"type": "tool", "name": "get_weather"}, {"type": "function", "function": {"name": "get_weather"}}, None),
    ({"type": "none"}, "none", None),
    ({"type": "auto", "disable_parallel_tool_use": True}, "auto", False),
])
def test_tool_choice_maps_to_chat(choice, expected, parallel):
    chat = translate_request({"max_tokens": 5, "tools": [WEATHER], "tool_choice": choice,
                              "messages": [{"role": "user", "content": "x"}]})
    assert chat["tool_choice"] == expected and chat.get("parallel_tool_calls") == parallel


def test_output_config_format_and_effort():
    schema = {"type": "object", "properties": {"n": {"type": "integer"}}}
    chat = translate_request({"max_tokens": 5, "messages": [{"role": "user", "content": "x"}],
                              "output_config": {"format": {"type": "json_schema", "schema": schema}, "effort": "low"}})
    assert chat["response_format"] == {"type": "json_schema", "json_schema": {"name": "output", "schema": schema}}
    assert chat["chat_template_kwargs"] == {"reasoning_effort": "low"}


def test_thinking_switches_the_template():
    chat = translate_request({"max_tokens": 5, "thinking": {"type": "enabled", "budget_tokens": 1024},
                              "messages": [{"role": "user", "content": "x"}]})
    assert chat["chat_template_kwargs"] == {"enable_thinking": True}


USER = [{"role": "user", "content": "x"}]


@pytest.mark.parametrize("body, param", [
    ({"messages": USER}, "max_tokens"),
    ({"max_tokens": "5", "messages": USER}, "max_tokens"),
    ({"max_tokens": 0, "messages": USER}, "max_tokens"),
    ({"max_tokens": 5, "messages": []}, "messages"),
    ({"max_tokens": 5, "messages": [{"role": "user", "content": [{"type": "image", "source": {}}]}]},
     "messages[0].content[0].type"),
    ({"max_tokens": 5, "messages": [{"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t"}]}]},
     "messages[0].content[0].tool_use_id"),
    ({"max_tokens": 5, "messages": [{"role": "system", "content": "x"}]}, "messages[0].role"),
    ({"max_tokens": 5, "messages": USER + [{"role": "assistant", "content": "Sure"}]}, "messages[1]"),
    ({"max_tokens": 5, "messages": USER, "tools": [{"type": "web_search_20250305", "name": "web_search"}]}, "tools[0].type"),
    ({"max_tokens": 5, "messages": USER, "tools": [{"name": "f"}]}, "tools[0].input_schema"),
    ({"max_tokens": 5, "messages": USER, "tools": [WEATHER], "tool_choice": {"type": "some"}}, "tool_choice.type"),
    ({"max_tokens": 5, "messages": USER, "tool_choice": {"type": "any"}}, "tool_choice"),
    ({"max_tokens": 5, "messages": USER, "temperature": 1.5}, "temperature"),
    ({"max_tokens": 5, "messages": USER, "stop_sequences": [1]}, "stop_sequences[0]"),
    ({"max_tokens": 5, "messages": "hi"}, "messages"),
])
def test_bad_input_is_refused_naming_the_param(body, param):
    err = refused(body)
    assert err.status == 400 and err.param == param


def test_reply_blocks_and_stop_reasons():
    calls = [call("call_a", "get_weather", {"city": "Oslo"})]
    msg = Message.model_validate(message_from_completion(completion(message("Sure.", calls, "hm"), "tool_calls")))
    assert [b.type for b in msg.content] == ["thinking", "text", "tool_use"]
    assert msg.content[2].input == {"city": "Oslo"} and msg.stop_reason == "tool_use"
    assert msg.usage.input_tokens == 11 and msg.usage.output_tokens == 7
    assert Message.model_validate(message_from_completion(completion(message("Hel"), "length"))).stop_reason == "max_tokens"
    assert Message.model_validate(message_from_completion(completion(message("Hi"), "stop"))).stop_reason == "end_turn"
    stopped = completion(message("Hi"), "stop")
    stopped["choices"][0]["stop_reason"] = "END"
    msg = Message.model_validate(message_from_completion(stopped, ["END"]))
    assert (msg.stop_reason, msg.stop_sequence) == ("stop_sequence", "END")


def run_stream(stream_chunks):
    s = MessagesStream("smol")
    events = s.start()
    for c in stream_chunks:
        events += s.feed(c)
    return events + s.finish()


def accumulate(events) -> dict:
    """Fold stream events into a Message dict, the way a client does."""
    msg = dict(events[0]["message"], content=[])
    partial: dict[int, str] = {}
    for e in events[1:]:
        if e["type"] == "content_block_start":
            msg["content"].append(dict(e["content_block"]))
        elif e["type"] == "content_block_delta":
            block, delta = msg["content"][e["index"]], e["delta"]
            if delta["type"] == "text_delta":
                block["text"] += delta["text"]
            elif delta["type"] == "thinking_delta":
                block["thinking"] += delta["thinking"]
            else:
                partial[e["index"]] = partial.get(e["index"], "") + delta["partial_json"]
        elif e["type"] == "message_delta":
            msg.update(e["delta"])
            msg["usage"] = e["usage"]
    import json
    for index, text in partial.items():
        msg["content"][index]["input"] = json.loads(text)
    return msg


CASES = [
    ("Hello there!", None, "", "stop"),
    ("\n ", [call("call_a", "get_weather", {"city": "Oslo"})], "", "tool_calls"),
    ("One sec. ", [call("call_a", "get_weather", {"city": "Oslo"}), call("call_b", "get_weather", {"city": "Rome"})],
     "thinking it over", "tool_calls"),
    ("Cut", None, "", "length"),
    ("", None, "", "stop"),
]


@pytest.mark.parametrize("content, calls, reasoning, finish", CASES)
@pytest.mark.parametrize("size", [1, 5, 100])
def test_stream_events_are_valid_and_agree_with_the_whole_reply(content, calls, reasoning, finish, size):
    events = run_stream(chunks(content, calls, reasoning, finish, size))
    for e in events:
        if e["type"] != "ping":  # ping is in Anthropic's stream but not in the SDK's event union
            EVENTS.validate_python(e)
    assert [e["type"] for e in events[:2]] == ["message_start", "ping"]
    assert [e["type"] for e in events[-2:]] == ["message_delta", "message_stop"]
    whole = message_from_completion(completion(message(content, calls, reasoning or None), finish))
    streamed = accumulate(events)
    assert streamed["content"] == whole["content"]
    assert streamed["stop_reason"] == whole["stop_reason"] and streamed["usage"] == whole["usage"]
    starts = [e["index"] for e in events if e["type"] == "content_block_start"]
    stops = [e["index"] for e in events if e["type"] == "content_block_stop"]
    assert starts == stops == list(range(len(whole["content"])))
