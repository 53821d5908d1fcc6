"""`parse_tool_calls` with no tool list accepts every name, in each dialect's own
call syntax — names glued to the dialect's punctuation included: Kimi K2's
``functions.NAME:0``, gpt-oss's ``to=functions.NAME``, Llama 3.1's built-ins
``<|python_tag|>brave_search.call(…)`` (and raw code for its code interpreter).

Texts are in the format those models write after their generation prompt
(the recorded outputs of tests/data/outputs, Meta's and OpenAI's format docs).
Each is parsed whole with no tool list, and fed one character at a time to the
dialect's streaming parser offered the names found: both give the same message.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from localtools import parse_tool_calls
from localtools.dialects import MessageBuilder, get_dialect
from tests.parser_cases import load_cases

KIMI_TAIL = "<|im_assistant|>assistant<|im_middle|>"
GPTOSS_TAIL = "<|start|>assistant"
LLAMA_TAIL = "<|start_header_id|>assistant<|end_header_id|>\n\n"

# (id, dialect, prompt_tail, text, expected calls, expected content)
NO_LIST: list[tuple[str, str, str, str, list[tuple[str, dict[str, Any]]], str | None]] = [
    ("kimi-single", "kimi-k2", KIMI_TAIL,
     ("<|tool_calls_section_begin|><|tool_call_begin|>functions.get_weather:0<|tool_call_argument_begin|>"
     '{"city": "Paris"}<|tool_call_end|><|tool_calls_section_end|>'),
     [("get_weather", {"city": "Paris"})], None),
    ("kimi-content-parallel", "kimi-k2", KIMI_TAIL,
     ("Let me check both.<|tool_calls_section_begin|><|tool_call_begin|>functions.get_weather:0"
     '<|tool_call_argument_begin|>{"city": "Oslo"}<|tool_call_end|><|tool_call_begin|>functions.get_current_date:1'
     "<|tool_call_argument_begin|>{}<|tool_call_end|><|tool_calls_section_end|>"),
     [("get_weather", {"city": "Oslo"}), ("get_current_date", {})], "Let me check both."),
    ("gptoss-recipient-in-header", "gpt-oss", GPTOSS_TAIL,
     ("<|channel|>analysis<|message|>Need the weather.<|end|><|start|>assistant to=functions.get_weather"
     '<|channel|>commentary json<|message|>{"city": "Tokyo"}<|call|>'),
     [("get_weather", {"city": "Tokyo"})], None),
    ("gptoss-recipient-after-channel", "gpt-oss", GPTOSS_TAIL,
     "<|channel|>commentary to=functions.get_current_date <|constrain|>json<|message|>{}<|call|>",
     [("get_current_date", {})], None),
    ("llama3-brave-search", "llama3", LLAMA_TAIL,
     '<|python_tag|>brave_search.call(query="weather in Paris today")',
     [("brave_search", {"query": "weather in Paris today"})], None),
    ("llama3-wolfram-alpha", "llama3", LLAMA_TAIL,
     '<|python_tag|>wolfram_alpha.call(query="solve x^3 - 4x^2 + 6x - 24 = 0")',
     [("wolfram_alpha", {"query": "solve x^3 - 4x^2 + 6x - 24 = 0"})], None),
    # Functionary v2 with neither a tool list nor a prompt tail: the text starts at the
    # recipient that the generation prompt "<|from|>assistant\n<|recipient|>" opened
    ("fv2-parallel", "functionary-v2", "",
     'get_weather\n<|content|>{"city": "Paris"}\n<|from|>assistant\n<|recipient|>get_current_date\n<|content|>{}',
     [("get_weather", {"city": "Paris"}), ("get_current_date", {})], None),
    ("fv2-all-is-content", "functionary-v2", "", "all\n<|content|>Hello! How can I help you today?",
     [], "Hello! How can I help you today?"),
    # Functionary v3.2 likewise: its generation prompt ends in ">>>"
    ("fv3-parallel", "functionary-v3", "",
     'get_weather\n{"city": "Paris"}>>>get_current_date\n{}',
     [("get_weather", {"city": "Paris"}), ("get_current_date", {})], None),
    ("fv3-all-is-content", "functionary-v3", "", "all\nHello! How can I help you today?",
     [], "Hello! How can I help you today?"),
    ("llama3-code-interpreter", "llama3", LLAMA_TAIL,
     "<|python_tag|>import math\nprint(math.sqrt(2))",
     [("python", {"code": "import math\nprint(math.sqrt(2))"})], None),
]


def _summary(msg: Any) -> tuple[Any, list[tuple[str, dict[str, Any]]]]:
    return msg.content, [(c.name, json.loads(c.arguments_json)) for c in msg.tool_calls]


def _fed_by_char(dialect: str, names: list[str], tail: str, text: str) -> Any:
    parser = get_dialect(dialect).parser([{"type": "function", "function": {"name": n}} for n in names], tail)
    builder = MessageBuilder()
    for ch in text:
        builder.add(parser.feed(ch))
    builder.add(parser.finish())
    return builder.build()


@pytest.mark.parametrize("cid,dialect,tail,text,calls,content", NO_LIST, ids=[c[0] for c in NO_LIST])
def test_no_tool_list_accepts_every_name(cid: str, dialect: str, tail: str, text: str,
                                         calls: list[tuple[str, dict[str, Any]]], content: str | None) -> None:
    whole = parse_tool_calls(text, dialect, None, tail)
    assert _summary(whole) == (content, calls)
    streamed = _fed_by_char(dialect, [name for name, _ in calls], tail, text)
    assert _summary(streamed) == _summary(whole)


def _recorded_calls() -> list[tuple[str, str, str, str, list[str]]]:
    """(id, dialect, tail, text, expected names) of every recorded output with calls."""
    from tests.test_dialect_families import CASES as FAMILY

    out = [(c["id"], d, c.get("prompt_tail", ""), c["text"], [t["name"] for t in c["expected"]["tool_calls"]])
           for d, c in load_cases() if c["expected"].get("tool_calls")]
    out += [(cid, d, tail, text, [n for n, _ in calls]) for d, cid, tail, text, _t, calls, _c, _r in FAMILY if calls]
    return out


RECORDED = _recorded_calls()


@pytest.mark.parametrize("cid,dialect,tail,text,names", RECORDED, ids=[f"{r[1]}:{r[0]}" for r in RECORDED])
def test_every_recorded_call_is_found_with_no_tool_list(cid: str, dialect: str, tail: str, text: str,
                                                        names: list[str]) -> None:
    """Offering no list finds the calls that offering the right tools finds."""
    assert [c.name for c in parse_tool_calls(text, dialect, None, tail).tool_calls] == names
