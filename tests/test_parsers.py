"""Every dialect parses real-format model outputs right: whole, a character
at a time, in 2/3/5/8-character chunks and in random splits — always the same
final message."""

from __future__ import annotations

import json
import random

import pytest

from localtools.dialects import MessageBuilder, get_dialect
from tests.parser_cases import load_cases, tools_for

CASES = load_cases()


def _parse(dialect_name: str, case: dict, chunks: list[str], stream: bool = True):
    dialect = get_dialect(dialect_name)
    parser = dialect.parser(tools_for(case), case.get("prompt_tail", ""), stream=stream)
    builder = MessageBuilder()
    for chunk in chunks:
        builder.add(parser.feed(chunk))
    builder.add(parser.finish())
    return builder.build()


def _split(text: str, size: int) -> list[str]:
    return [text[i : i + size] for i in range(0, len(text), size)] or [""]


def _random_split(text: str, seed: int) -> list[str]:
    rng = random.Random(seed)
    out, i = [], 0
    while i < len(text):
        n = rng.randint(1, 12)
        out.append(text[i : i + n])
        i += n
    return out


def _summary(msg) -> dict:
    return {
        "content": msg.content,
        "reasoning": msg.reasoning,
        "tool_calls": [{"name": c.name, "arguments": json.loads(c.arguments_json)} for c in msg.tool_calls],
    }


def _expected(case: dict) -> dict:
    exp = case["expected"]
    return {
        "content": exp.get("content"),
        "reasoning": exp.get("reasoning"),
        "tool_calls": [{"name": c["name"], "arguments": c["arguments"]} for c in exp.get("tool_calls", [])],
    }


@pytest.mark.parametrize("dialect,case", CASES, ids=[f"{d}:{c['id']}" for d, c in CASES])
def test_whole_output_parses_as_expected(dialect: str, case: dict) -> None:
    msg = _parse(dialect, case, [case["text"]], stream=False)
    assert _summary(msg) == _expected(case)


@pytest.mark.parametrize("dialect,case", CASES, ids=[f"{d}:{c['id']}" for d, c in CASES])
def test_held_parse_is_chunking_invariant_too(dialect: str, case: dict) -> None:
    whole = _parse(dialect, case, [case["text"]], stream=False)
    for size in (1, 4):
        msg = _parse(dialect, case, _split(case["text"], size), stream=False)
        assert _summary(msg) == _summary(whole)


@pytest.mark.parametrize("dialect,case", CASES, ids=[f"{d}:{c['id']}" for d, c in CASES])
def test_streaming_equals_held_parse_for_well_formed_calls(dialect: str, case: dict) -> None:
    held = _parse(dialect, case, [case["text"]], stream=False)
    streamed = _parse(dialect, case, _split(case["text"], 2), stream=True)
    if len(streamed.tool_calls) == len(held.tool_calls):
        assert _summary(streamed) == _summary(held)


@pytest.mark.parametrize("dialect,case", CASES, ids=[f"{d}:{c['id']}" for d, c in CASES])
def test_any_split_gives_the_same_message(dialect: str, case: dict) -> None:
    text = case["text"]
    whole = _parse(dialect, case, [text])
    splits = [_split(text, n) for n in (1, 2, 3, 5, 8)] + [_random_split(text, s) for s in range(5)]
    for chunks in splits:
        msg = _parse(dialect, case, chunks)
        assert msg.content == whole.content
        assert msg.reasoning == whole.reasoning
        assert [(c.name, c.arguments_json, c.id) for c in msg.tool_calls] == [
            (c.name, c.arguments_json, c.id) for c in whole.tool_calls
        ]


@pytest.mark.parametrize("dialect,case", CASES, ids=[f"{d}:{c['id']}" for d, c in CASES])
def test_arguments_are_valid_json_objects(dialect: str, case: dict) -> None:
    msg = _parse(dialect, case, _split(case["text"], 3))
    for call in msg.tool_calls:
        assert isinstance(json.loads(call.arguments_json), dict)
