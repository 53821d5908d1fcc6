"""`auto` in decide mode (dialects/decide.py): the grammar's two branches and the opener's removal.

Grammar membership is checked with the test recognizer (tests/gbnf_match.py);
the parser is fed recorded text in every split, as the engine would stream it.
"""

from __future__ import annotations

from typing import Any

import pytest

from localtools.dialects import get_dialect
from localtools.dialects.base import parse_all
from localtools.dialects.decide import OpenerStripper, decision_grammar
from localtools.dialects.specdialect import SpecDialect
from tests.gbnf_match import Recognizer

WEATHER = {"type": "function", "function": {"name": "get_weather", "parameters": {
    "type": "object", "properties": {"city": {"type": "string"}, "days": {"type": "integer"}}, "required": ["city"]}}}
CLOCK = {"type": "function", "function": {"name": "get_time", "parameters": {"type": "object", "properties": {}}}}
TOOLS = [WEATHER, CLOCK]

CALL_W = '<tool_call>\n{"name": "get_weather", "arguments": {"city": "Paris"}}\n</tool_call>'
CALL_T = '<tool_call>\n{"name": "get_time", "arguments": {}}\n</tool_call>'


def dialect(name: str = "chatml-function") -> SpecDialect:
    found = get_dialect(name)
    assert isinstance(found, SpecDialect)
    return found


def accepts(gbnf: str, text: str) -> bool:
    return Recognizer(gbnf).matches("root", text)


@pytest.mark.parametrize("name", ["chatml-function", "generic"])
def test_untrained_dialects_decide_by_default_and_trained_ones_do_not(name: str) -> None:
    assert get_dialect(name).auto_tools_default == "decide"
    assert get_dialect("hermes").auto_tools_default == "native"
    assert get_dialect("llama3").auto_tools_default == "native"


def test_grammar_takes_calls_over_the_offered_tools_or_opened_text() -> None:
    d = dialect()
    gbnf = d.decision_grammar(TOOLS, parallel=True).gbnf
    assert accepts(gbnf, CALL_W)
    assert accepts(gbnf, CALL_W + "\n" + CALL_W.replace("Paris", "Rome"))  # parallel calls
    assert accepts(gbnf, d.text_opener + " It is sunny <tool_call> anything\n at all.")
    assert accepts(gbnf, d.text_opener)
    assert not accepts(gbnf, "It is sunny.")  # text must open with the opener
    assert not accepts(gbnf, CALL_W.replace("get_weather", "get_weathers"))  # only offered names
    assert not accepts(gbnf, CALL_W.replace('"Paris"', "7"))  # arguments by schema
    assert not accepts(gbnf, CALL_W.replace('{"city": "Paris"}', "{}"))  # required argument
    assert not accepts(gbnf, CALL_W + " and some text")  # calls only, once calling


def test_text_after_the_opener_does_not_start_like_a_call() -> None:
    """A made-up call written as text would reach the client as content."""
    d = dialect()
    gbnf = d.decision_grammar(TOOLS, parallel=True).gbnf
    assert accepts(gbnf, d.text_opener + "\n It is sunny.")
    assert accepts(gbnf, d.text_opener + " ")
    assert not accepts(gbnf, d.text_opener + " " + CALL_W)
    assert not accepts(gbnf, d.text_opener + "\n\n" + CALL_W)


def test_the_reply_made_again_is_text_without_the_opener() -> None:
    gbnf = dialect().answer_grammar().gbnf
    assert accepts(gbnf, "It is sunny.")
    assert not accepts(gbnf, CALL_W)
    assert not accepts(gbnf, "\n " + CALL_W)
    assert not accepts(gbnf, "")


def test_further_calls_repeat_the_first_calls_function() -> None:
    gbnf = dialect().decision_grammar(TOOLS, parallel=True).gbnf
    assert accepts(gbnf, CALL_T + "\n" + CALL_T)
    assert accepts(gbnf, CALL_W + "\n" + CALL_W + "\n" + CALL_W)
    assert not accepts(gbnf, CALL_W + "\n" + CALL_T)  # a second tool after the first: chained guesses
    assert not accepts(gbnf, CALL_T + "\n" + CALL_W)


def test_same_function_rule_holds_in_a_list_syntax() -> None:
    xlam = dialect("xlam")
    gbnf = decision_grammar(xlam.spec, TOOLS, True, "answer:").gbnf
    w = '{"name": "get_weather", "arguments": {"city": "Paris"}}'
    t = '{"name": "get_time", "arguments": {}}'
    assert accepts(gbnf, f"[{w}, {w}]")
    assert not accepts(gbnf, f"[{w}, {t}]")


def test_parallel_false_allows_one_call() -> None:
    gbnf = dialect().decision_grammar(TOOLS, parallel=False).gbnf
    assert accepts(gbnf, CALL_T)
    assert not accepts(gbnf, CALL_W + "\n" + CALL_T)
    assert not accepts(gbnf, CALL_W + "\n" + CALL_W)


def test_no_opener_means_text_not_starting_like_a_call() -> None:
    d = dialect()
    gbnf = decision_grammar(d.spec, TOOLS, True, "")
    assert accepts(gbnf.gbnf, "It is sunny.")
    assert not accepts(gbnf.gbnf, "<b>sunny</b>")
    assert accepts(gbnf.gbnf, CALL_T)


def test_no_decision_when_the_prompt_opened_reasoning_or_there_are_no_tools() -> None:
    hermes = dialect("hermes")
    assert hermes.decision_grammar(TOOLS, True, prompt_tail="<|im_start|>assistant\n<think>\n") is None
    assert hermes.decision_grammar([], True) is None
    assert hermes.decision_grammar(TOOLS, True) is not None  # any spec dialect can, when asked


def splits(text: str) -> list[list[str]]:
    """The text whole, character by character, and in pieces of 3."""
    return [[text], list(text), [text[i:i + 3] for i in range(0, len(text), 3)]]


def parse_pieces(pieces: list[str], tools: list[dict[str, Any]], stream: bool) -> Any:
    d = dialect()
    parser = d.decision_parser(tools, stream=stream)
    from localtools.dialects.base import MessageBuilder

    builder = MessageBuilder()
    for piece in pieces:
        builder.add(parser.feed(piece))
    builder.add(parser.finish())
    return builder.build()


@pytest.mark.parametrize("stream", [True, False])
def test_parser_drops_the_opener_and_the_space_after_it(stream: bool) -> None:
    text = dialect().text_opener + "  It is sunny in Paris."
    for pieces in splits(text):
        message = parse_pieces(pieces, TOOLS, stream)
        assert message.content == "It is sunny in Paris."
        assert message.tool_calls == []


@pytest.mark.parametrize("stream", [True, False])
def test_parser_reads_calls_made_under_the_grammar(stream: bool) -> None:
    for pieces in splits(CALL_W + "\n" + CALL_T):
        message = parse_pieces(pieces, TOOLS, stream)
        assert [c.name for c in message.tool_calls] == ["get_weather", "get_time"]
        assert message.tool_calls[0].arguments == {"city": "Paris"}
        assert not message.content


def test_text_without_the_opener_is_unchanged() -> None:
    opener = dialect().text_opener
    for text in ("Sunny.", opener[:2], "  " + opener + " x"):
        parser = OpenerStripper(dialect().parser(TOOLS), opener)
        assert parse_all(parser, text).content == text
