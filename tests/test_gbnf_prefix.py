"""What a grammar forces at the start of a reply (localtools/gbnf_prefix.py): read from
the grammars the dialects write, and from small grammars of each construct. The engine
evaluates this text with the prompt (tests/test_jump_forward.py)."""

from __future__ import annotations

import random
from typing import Any

import pytest

from localtools.dialects import all_dialects, get_dialect
from localtools.gbnf_prefix import forced_prefix
from tests.gbnf_match import Recognizer, parse_gbnf

WEATHER = {"type": "function", "function": {"name": "get_weather", "parameters": {
    "type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}
WIND = {"type": "function", "function": {"name": "get_wind", "parameters": {"type": "object", "properties": {}}}}


def required(dialect: str, tools: list[dict[str, Any]], choice: Any = "required") -> str:
    grammar = get_dialect(dialect).grammar(tools, choice, True)
    assert grammar is not None and not grammar.lazy
    return grammar.gbnf


def test_one_required_tool_forces_the_call_up_to_its_arguments() -> None:
    assert forced_prefix(required("chatml-function", [WEATHER])) == '<tool_call>\n{"name": "get_weather", "arguments": {'
    assert forced_prefix(required("mistral", [WEATHER])) == "[TOOL_CALLS]get_weather[ARGS]{"


def test_several_tools_force_only_what_their_calls_share_cut_at_a_word_start() -> None:
    """get_weather and get_wind share `get_w`: the model still spells the name it picks."""
    assert forced_prefix(required("chatml-function", [WEATHER, WIND])) == '<tool_call>\n{"name": "'


def test_a_named_tool_without_parameters_is_forced_whole() -> None:
    choice = {"type": "function", "function": {"name": "get_wind"}}
    assert forced_prefix(required("hermes", [WEATHER, WIND], choice)) == (
        '<tool_call>\n{"name": "get_wind", "arguments": {}}\n</tool_call>')


def test_the_decision_grammar_forces_nothing() -> None:
    d = get_dialect("chatml-function")
    assert forced_prefix(d.decision_grammar([WEATHER], parallel=True).gbnf) == ""


@pytest.mark.parametrize("gbnf, forced", [
    ('root ::= "ab" [c-d] "e"', "ab"),
    ('root ::= "a"? "b"', ""),
    ('root ::= x{2} "y" [0-9]\nx ::= "z"', "zzy"),
    ('root ::= x+ "y"\nx ::= "z"', "z"),  # one z at least, maybe more
    ('root ::= "\\x41\\n\\"\\u00e9" .', 'A\n"é'),
    ('root ::= ("ab" | "ab") "c"', "abc"),  # the same text either way
    ('root ::= "{" (\n  "k1" | "k2"\n) "}"', "{"),  # a group across lines; `k` is a word's start
    ('# a comment\nroot ::= "a#b" # and another\n  "c"', "a#bc"),
    ('root ::= "x" undefined-rule', ""),  # unsure: nothing
    ('root ::= "x" @oops', ""),
    ("other ::= \"a\"", ""),  # no root
])
def test_each_construct(gbnf: str, forced: str) -> None:
    assert forced_prefix(gbnf) == forced


def test_every_dialect_forces_only_what_every_accepted_call_starts_with() -> None:
    """Soundness on every dialect's required grammar, for one tool and for two: random
    strings the grammar accepts (generated from the tests' own GBNF reader, not ours)
    all start with the forced text."""
    rng = random.Random(7)
    for dialect in all_dialects():
        for tools in ([WEATHER], [WEATHER, WIND]):
            grammar = dialect.grammar(tools, "required", True)
            if grammar is None or grammar.lazy:
                continue
            forced = forced_prefix(grammar.gbnf)
            assert forced, dialect.name
            rules = parse_gbnf(grammar.gbnf)
            samples = [_sample(rules, ("ref", "root"), rng, 0) for _ in range(30)]
            assert {s[:len(forced)] for s in samples} == {forced}, (dialect.name, forced, samples[:3])
            assert all(Recognizer(rules).matches("root", s) for s in samples[:5])


def _sample(rules: dict[str, Any], node: Any, rng: random.Random, depth: int) -> str:
    """One random string of `node`'s language (repetitions kept short, and minimal deep down)."""
    kind = node[0]
    if kind == "lit":
        return str(node[1])
    if kind == "cls":
        ranges, negated = node[1], node[2]
        if negated:
            return next(ch for ch in "aZ0 ~" if not any(a <= ord(ch) <= b for a, b in ranges))
        low, high = rng.choice(ranges)
        return chr(rng.randint(low, min(high, low + 25)))
    if kind == "ref":
        return _sample(rules, rules[node[1]], rng, depth + 1)
    if kind == "alt":
        return _sample(rules, node[1][0] if depth > 40 else rng.choice(node[1]), rng, depth + 1)
    if kind == "seq":
        return "".join(_sample(rules, sub, rng, depth + 1) for sub in node[1])
    _, sub, low, high = node
    count = low if depth > 40 else rng.randint(low, low + 2 if high is None else min(high, low + 2))
    return "".join(_sample(rules, sub, rng, depth + 1) for _ in range(count))
