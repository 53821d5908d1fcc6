"""Values written the way a template taught them, not as JSON.

A model copies what its template rendered in history. Some templates print a
dict with ``{{ value }}`` (Python repr), quote every value as a string, nest
an object as child elements, or write almost-Python calls with unquoted
values. The parser reads each back as the client's schema asks, streamed a
character at a time or whole, and leaves text that is none of these alone.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from localtools.dialects import MessageBuilder, parse_all
from localtools.dialects.pycall import parse_loose_python_calls, python_literal
from localtools.dialects.spec import DialectSpec
from localtools.dialects.specdialect import SpecDialect

EVENT = {
    "type": "function",
    "function": {
        "name": "create_event",
        "parameters": {
            "type": "object",
            "properties": {
                "title": {"type": "string"},
                "seats": {"type": "integer"},
                "when": {"type": "object", "properties": {"date": {"type": "string"}}},
                "tags": {"type": "array", "items": {"type": "string"}},
            },
        },
    },
}
TOOLS = [EVENT]

TAGGED = DialectSpec(
    name="t", shape="tagged", call_start="<call>\n", name_prefix="<function=", name_suffix=">\n",
    arg_name_prefix="<parameter=", arg_name_suffix=">", arg_value_suffix="</parameter>\n",
    call_end="</function>\n</call>",
)
ELEMENTS = DialectSpec(
    name="e", shape="tagged", section_start="<calls>", section_end="</calls>", name_prefix='<invoke name="',
    name_suffix='">', arg_name_prefix="<", arg_name_suffix=">", arg_value_suffix="</{key}>", call_end="</invoke>",
)
QUOTED = DialectSpec(name="q", shape="tag_json", call_start="<call>", name_prefix="call:", call_end="</call>",
                     args_string_quote="<q>")
PYTHON = DialectSpec(name="p", shape="python", section_start="<calls>", section_end="</calls>")
BARE = DialectSpec(name="b", shape="json", bare_json=True, call_sep=",")


def _calls(spec: DialectSpec, text: str, stream: bool) -> list[tuple[str, dict[str, Any]]]:
    parser = SpecDialect(spec).parser(TOOLS, stream=stream)
    if not stream:
        return [(c.name, c.arguments) for c in parse_all(parser, text).tool_calls]
    builder = MessageBuilder()
    for ch in text:
        builder.add(parser.feed(ch))
    builder.add(parser.finish())
    return [(c.name, c.arguments) for c in builder.build().tool_calls]


@pytest.mark.parametrize("stream", [False, True])
def test_tagged_object_value_in_python_repr(stream: bool) -> None:
    text = (
        "<call>\n<function=create_event>\n<parameter=title>Lunch</parameter>\n"
        "<parameter=when>{'date': '2025-03-07', 'ok': True, 'n': None}</parameter>\n"
        "<parameter=tags>['a', 'b']</parameter>\n</function>\n</call>"
    )
    assert _calls(TAGGED, text, stream) == [
        ("create_event", {"title": "Lunch", "when": {"date": "2025-03-07", "ok": True, "n": None}, "tags": ["a", "b"]})
    ]


def test_a_string_parameter_keeps_its_braces() -> None:
    text = "<call>\n<function=create_event>\n<parameter=title>{'not': 'parsed'}</parameter>\n</function>\n</call>"
    assert _calls(TAGGED, text, False) == [("create_event", {"title": "{'not': 'parsed'}"})]


@pytest.mark.parametrize("stream", [False, True])
def test_object_as_child_elements_named_after_keys(stream: bool) -> None:
    text = (
        '<calls><invoke name="create_event"><title>Lunch</title><seats>12</seats>'
        "<when><date>2025-03-07</date><time>12:30</time></when></invoke></calls>"
    )
    assert _calls(ELEMENTS, text, stream) == [
        ("create_event", {"title": "Lunch", "seats": 12, "when": {"date": "2025-03-07", "time": "12:30"}})
    ]


@pytest.mark.parametrize("stream", [False, True])
def test_quoted_values_take_the_schema_type(stream: bool) -> None:
    text = "<call>call:create_event{title:<q>12<q>,seats:<q>12<q>,when:<q>{'date': 'x'}<q>}</call>"
    assert _calls(QUOTED, text, stream) == [("create_event", {"title": "12", "seats": 12, "when": {"date": "x"}})]


def test_a_quoted_value_that_is_not_its_type_stays_a_string() -> None:
    text = "<call>call:create_event{seats:<q>a dozen<q>}</call>"
    assert _calls(QUOTED, text, False) == [("create_event", {"seats": "a dozen"})]


@pytest.mark.parametrize(
    "body",
    [
        "[create_event(title=Team lunch, Friday, seats=12, when={'date': '2025-03-07'})]",  # unquoted
        '[create_event(title="Team lunch, Friday"seats=12when={"date": "2025-03-07"})]',  # commas missing
        '[create_event(title="Team lunch, Friday", seats="12", when="{\'date\': \'2025-03-07\'}")]',  # all quoted
    ],
)
@pytest.mark.parametrize("stream", [False, True])
def test_almost_python_calls_read_by_the_offered_names(body: str, stream: bool) -> None:
    assert _calls(PYTHON, f"<calls>{body}</calls>", stream) == [
        ("create_event", {"title": "Team lunch, Friday", "seats": 12, "when": {"date": "2025-03-07"}})
    ]


def test_loose_python_needs_offered_names_and_keys() -> None:
    tools = {"create_event": EVENT["function"]["parameters"]}
    assert parse_loose_python_calls("[create_event(title=x, seats=2)]", tools) == [
        ("create_event", {"title": "x", "seats": 2})
    ]
    assert parse_loose_python_calls("[delete_all(force=yes)]", tools) is None  # not offered
    assert parse_loose_python_calls("[create_event(colour=red)]", tools) is None  # no such parameter
    assert parse_loose_python_calls("see create_event(title=x)", tools) is None  # prose before the call
    # a key name inside a quoted value is part of the value
    assert parse_loose_python_calls('create_event(title="a, seats=3"seats=4)', tools) == [
        ("create_event", {"title": "a, seats=3", "seats": 4})
    ]


def test_python_literal_accepts_literals_only() -> None:
    assert python_literal("{'a': [1, 2.5, True, None]}") == {"a": [1, 2.5, True, None]}
    for bad in ("__import__('os')", "{'a': f(1)}", "{'a': ", "{1, 2}"):
        with pytest.raises(ValueError):
            python_literal(bad)


@pytest.mark.parametrize("stream", [False, True])
def test_bare_calls_joined_by_the_templates_separator(stream: bool) -> None:
    text = '{"name": "create_event", "arguments": {"title": "A"}},{"name": "create_event", "arguments": {"title": "B"}}'
    assert _calls(BARE, text, stream) == [("create_event", {"title": "A"}), ("create_event", {"title": "B"})]
    # without the separator declared, the second object is text
    parser = SpecDialect(replace(BARE, call_sep="")).parser(TOOLS, stream=False)
    assert len(parse_all(parser, text).tool_calls) == 1
