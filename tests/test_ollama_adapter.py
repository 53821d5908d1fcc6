"""The Ollama translator, validated with the `ollama` client's own response models."""

from __future__ import annotations

import pytest
from ollama import ChatResponse, GenerateResponse, ListResponse, ShowResponse

from localtools.adapters.ollama import (
    OllamaStream,
    chat_reply,
    generate_reply,
    load_reply,
    model_details,
    show_reply,
    tags_reply,
    translate_chat,
    translate_generate,
)
from localtools.adapters.translate import TranslationError
from tests.chat_replies import call, chunks, completion, message

TOOL = {"type": "function", "function": {"name": "get_weather", "description": "Weather",
                                         "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}}


def test_defaults_options_format_and_think():
    chat = translate_chat({"model": "m", "messages": [{"role": "user", "content": "Hi"}], "format": "json",
                           "think": "high", "options": {"temperature": 0.1, "num_predict": 8, "top_k": 3,
                                                        "stop": ["x"], "num_ctx": 4096, "seed": 1}})
    assert chat["stream"] is True  # Ollama streams unless told not to
    assert chat["response_format"] == {"type": "json_object"}
    assert chat["chat_template_kwargs"] == {"enable_thinking": True, "reasoning_effort": "high"}
    assert (chat["temperature"], chat["max_tokens"], chat["top_k"], chat["stop"], chat["seed"]) == (0.1, 8, 3, ["x"], 1)
    schema = {"type": "object", "properties": {"a": {"type": "integer"}}}
    fmt = translate_chat({"messages": [{"role": "user", "content": "Hi"}], "format": schema, "stream": False})
    assert fmt["response_format"]["json_schema"]["schema"] == schema and "stream_options" not in fmt
    assert "max_tokens" not in translate_chat({"messages": [{"role": "user", "content": "x"}], "options": {"num_predict": -1}})


def test_tool_results_are_paired_with_calls_by_name_and_order():
    chat = translate_chat({"messages": [
        {"role": "user", "content": "Weather?"},
        {"role": "assistant", "content": "", "tool_calls": [
            {"function": {"name": "get_weather", "arguments": {"city": "Oslo"}}},
            {"function": {"name": "get_time", "arguments": {}}}]},
        {"role": "tool", "tool_name": "get_time", "content": "noon"},
        {"role": "tool", "content": "cold"},
    ], "tools": [TOOL], "tool_choice": "required"})
    msgs = chat["messages"]
    ids = [c["id"] for c in msgs[1]["tool_calls"]]
    assert len(set(ids)) == 2 and msgs[1]["content"] is None
    assert msgs[1]["tool_calls"][0]["function"]["arguments"] == '{"city": "Oslo"}'
    assert (msgs[2]["tool_call_id"], msgs[3]["tool_call_id"]) == (ids[1], ids[0])
    assert chat["tool_choice"] == "required"


def test_tool_choice_extension_in_options():
    chat = translate_chat({"messages": [{"role": "user", "content": "x"}], "tools": [TOOL],
                           "options": {"tool_choice": {"type": "function", "function": {"name": "get_weather"}}}})
    assert chat["tool_choice"] == {"type": "function", "function": {"name": "get_weather"}}


@pytest.mark.parametrize("body, param", [
    ({"messages": [{"role": "tool", "content": "x"}]}, "messages[0]"),
    ({"messages": [{"role": "user", "content": "x", "images": ["aGk="]}]}, "messages[0].images"),
    ({"messages": [{"role": "wizard", "content": "x"}]}, "messages[0].role"),
    ({"messages": [{"role": "user", "content": 5}]}, "messages[0].content"),
    ({"messages": [{"role": "user", "content": "x"}], "options": {"temperature": "hot"}}, "options.temperature"),
    ({"messages": [{"role": "user", "content": "x"}], "format": "yaml"}, "format"),
    ({"messages": [{"role": "user", "content": "x"}], "think": "very"}, "think"),
    ({"messages": [{"role": "user", "content": "x"}], "stream": "no"}, "stream"),
    ({"messages": [{"role": "user", "content": "x"}], "tool_choice": "required"}, "tool_choice"),
    ({"messages": []}, "messages"),
])
def test_bad_chat_input_is_refused(body, param):
    with pytest.raises(TranslationError) as info:
        translate_chat(body)
    assert info.value.status == 400 and info.value.param == param


def test_generate_translation_and_refusals():
    chat = translate_generate({"model": "m", "prompt": "Hi", "system": "S", "stream": False})
    assert chat["messages"] == [{"role": "system", "content": "S"}, {"role": "user", "content": "Hi"}]
    assert translate_generate({"model": "m"}) is None
    GenerateResponse.model_validate(load_reply("m"))
    for key, value in (("images", ["x"]), ("suffix", "}"), ("raw", True), ("template", "{{ .Prompt }}")):
        with pytest.raises(TranslationError) as info:
            translate_generate({"prompt": "Hi", key: value})
        assert info.value.param == key


def test_replies_validate_with_the_client_models():
    calls = [call("call_a", "get_weather", {"city": "Oslo"})]
    reply = ChatResponse.model_validate(chat_reply(completion(message(None, calls, "hm"), "tool_calls"), "smol", 5))
    assert reply.done and reply.done_reason == "stop" and reply.message.thinking == "hm"
    assert reply.message.tool_calls[0].function.arguments == {"city": "Oslo"}
    assert (reply.prompt_eval_count, reply.eval_count) == (11, 7)
    gen = GenerateResponse.model_validate(generate_reply(completion(message("Hel"), "length"), "smol", 5))
    assert gen.response == "Hel" and gen.done_reason == "length"
    details = model_details("llama", "Q4_1", "135M")
    listed = ListResponse.model_validate(tags_reply("smol", 100, 1.7e9, "ab12", details))
    assert listed.models[0].model == "smol" and listed.models[0].details.quantization_level == "Q4_1"
    shown = ShowResponse.model_validate(show_reply("{{ x }}", details, {"general.architecture": "llama"},
                                                   ["completion", "tools"], 1.7e9))
    assert shown.capabilities == ["completion", "tools"] and shown.modelinfo["general.architecture"] == "llama"


def fold(pieces: list[dict]) -> dict:
    """Join NDJSON chat pieces the way a client does."""
    content = "".join(p["message"].get("content", "") for p in pieces)
    thinking = "".join(p["message"].get("thinking", "") for p in pieces)
    calls = [c for p in pieces for c in p["message"].get("tool_calls", [])]
    return {"content": content, "thinking": thinking or None, "tool_calls": calls or None,
            "done_reason": pieces[-1]["done_reason"]}


CASES = [
    ("Hello there!", None, "", "stop"),
    ("\n", [call("call_a", "get_weather", {"city": "Oslo"})], "", "tool_calls"),
    ("Ok ", [call("call_a", "get_weather", {"city": "Oslo"}), call("call_b", "get_weather", {"city": "Rome"})],
     "hmm", "tool_calls"),
    ("Cut", None, "", "length"),
]


@pytest.mark.parametrize("content, calls, reasoning, finish", CASES)
@pytest.mark.parametrize("size", [1, 100])
def test_stream_agrees_with_the_whole_reply(content, calls, reasoning, finish, size):
    s = OllamaStream("smol")
    pieces = [p for c in chunks(content, calls, reasoning, finish, size) for p in s.feed(c)] + s.finish(9)
    for p in pieces:
        ChatResponse.model_validate(p)
    assert [p["done"] for p in pieces] == [False] * (len(pieces) - 1) + [True]
    whole = chat_reply(completion(message(content, calls, reasoning or None), finish), "smol", 9)
    folded = fold(pieces)
    assert folded["content"] == whole["message"]["content"]
    assert folded["thinking"] == whole["message"].get("thinking")
    assert folded["tool_calls"] == whole["message"].get("tool_calls")
    assert folded["done_reason"] == whole["done_reason"] and pieces[-1]["eval_count"] == whole["eval_count"]


def test_generate_stream_pieces():
    s = OllamaStream("smol", generate=True)
    pieces = [p for c in chunks("Hello", size=2) for p in s.feed(c)] + s.finish(3)
    for p in pieces:
        GenerateResponse.model_validate(p)
    assert "".join(p["response"] for p in pieces) == "Hello" and pieces[-1]["done"]
