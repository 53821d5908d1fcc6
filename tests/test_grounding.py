"""Decide mode's grounding check (dialects/grounding.py) and the text reply that replaces
an invented call (service.ChatRun with a Redo).

The calls are ones SmolLM2-135M made in scripts/eval_tools.py runs: the invented ones
came for questions no offered tool fits, the grounded ones for questions a tool answers.
"""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any

import pytest

from localtools.dialects import CallStart, ContentDelta, get_dialect
from localtools.dialects.grounding import Grounding, message_text
from localtools.service import ChatRun, Finish, Redo
from tests.test_stream_chunks import RecordedHandle


def tool(name: str, **props: Any) -> dict[str, Any]:
    return {"type": "function", "function": {"name": name, "parameters": {"type": "object", "properties": props}}}


STRING = {"type": "string"}
NUMBER = {"type": "number"}
FLIGHTS = tool("search_flights", origin=STRING, destination=STRING, date=STRING, passengers={"type": "integer"})
RESTAURANT = tool("book_restaurant", restaurant=STRING, party_size={"type": "integer"}, time=STRING)
WIKI = tool("get_wikipedia_summary", topic=STRING)
CLOCK = tool("get_time_in_timezone", timezone=STRING)
PIZZA = tool("order_pizza", size={"type": "string", "enum": ["small", "large"]}, toppings={"type": "array", "items": STRING})
LIGHTS = tool("turn_on_lights", room=STRING, brightness={"type": "integer"})
INTEREST = tool("compound_interest", principal=NUMBER, rate=NUMBER, years={"type": "integer"})
TIMER = tool("set_timer", minutes={"type": "integer"}, label=STRING)
DND = tool("set_do_not_disturb", enabled={"type": "boolean"})
RECIPES = tool("find_recipes", ingredient=STRING)
TOOLS = [FLIGHTS, RESTAURANT, WIKI, CLOCK, PIZZA, LIGHTS, INTEREST, TIMER, DND, RECIPES]


def grounded(user: str, name: str, arguments: str, system: str | None = None) -> bool:
    messages = ([{"role": "system", "content": system}] if system else []) + [{"role": "user", "content": user}]
    return Grounding(messages, TOOLS).grounded(name, arguments)


@pytest.mark.parametrize("user, name, arguments", [
    ("How do I boil an egg?", "search_flights", '{"origin": "eggs", "destination": "eggs", "date": "2022-01-01", "passengers": 1}'),
    ("Hi! How are you today?", "book_restaurant", '{"restaurant": "book_restaurant", "party_size": 0, "time": "book_restaurant"}'),
    ("Thank you, that's all I needed!", "get_time_in_timezone", '{"timezone": "..."}'),
    ("What's your name?", "get_wikipedia_summary", '{"topic": "The World of Warcraft"}'),
    ("Write a short poem about the sea.", "compound_interest", '{"principal": 0, "rate": 0, "years": 0}'),
])
def test_calls_made_of_invented_values_are_not_grounded(user: str, name: str, arguments: str) -> None:
    assert not grounded(user, name, arguments)


@pytest.mark.parametrize("user, name, arguments", [
    ("Find flights from London to Rome on 2026-05-12.", "search_flights",
     '{"origin": "London", "destination": "Rome", "date": "2026-05-12", "passengers": 1}'),
    ("What is today's horoscope for LEO?", "get_wikipedia_summary", '{"topic": "leo"}'),  # case, whole value
    ("Turn on the lights in the living room.", "turn_on_lights", '{"room": "living_room", "brightness": 25}'),
    ("Anything with tomatoes?", "find_recipes", '{"ingredient": "tomato"}'),  # a longer word extends a shorter
    ("Set a timer for fifteen minutes.", "set_timer", '{"minutes": 15}'),  # number words
    ("Invest 1,000 at 5% for ten years.", "compound_interest", '{"principal": 1000, "rate": 0.05, "years": 10}'),
    ("Order me a pizza.", "order_pizza", '{"size": "small", "toppings": []}'),  # only enum values: not judged
    ("Turn on do not disturb.", "set_do_not_disturb", '{"enabled": true}'),  # booleans: not judged
    ("What time is it?", "get_time_in_timezone", ""),  # no arguments: not judged
])
def test_calls_carrying_something_from_the_conversation_are_grounded(user: str, name: str, arguments: str) -> None:
    assert grounded(user, name, arguments)


def test_one_grounded_value_is_enough_and_short_words_do_not_count() -> None:
    assert grounded("Book a table at Nopa.", "book_restaurant", '{"restaurant": "Nopa", "party_size": 0, "time": "x"}')
    assert not grounded("What is the capital of France?", "get_wikipedia_summary", '{"topic": "the art of war"}')
    assert grounded("What is the art of war?", "get_wikipedia_summary", '{"topic": "the art of war"}')  # whole value
    assert not grounded("How do I boil an egg?", "find_recipes", '{"ingredient": "eggs"}')  # "egg" is too short to extend


def test_values_from_the_system_prompt_earlier_calls_and_text_parts_count() -> None:
    assert grounded("Where am I flying?", "search_flights", '{"origin": "Oslo"}', system="The user lives in Oslo.")
    messages = [
        {"role": "user", "content": [{"type": "text", "text": "Summaries please."}]},
        {"role": "assistant", "content": None, "tool_calls": [
            {"id": "c1", "type": "function", "function": {"name": "get_wikipedia_summary", "arguments": '{"topic": "Mars"}'}}]},
        {"role": "tool", "tool_call_id": "c1", "content": "Mars is the fourth planet; see also Phobos."},
        {"role": "user", "content": "And its moon?"},
    ]
    assert "Mars" in message_text(messages)
    g = Grounding(messages, TOOLS)
    assert g.grounded("get_wikipedia_summary", '{"topic": "Phobos"}')
    assert not g.grounded("get_wikipedia_summary", '{"topic": "Jupiter"}')


def test_unknown_tools_and_unparsable_arguments_are_left_to_the_parser() -> None:
    assert grounded("Hello", "get_wikipedia_summary", "{not json")
    assert not grounded("Hello", "no_such_tool", '{"x": "nothing here"}')  # unknown schema: every value is free


# ---- the reply made again as text ---------------------------------------------------

INVENTED = '<tool_call>\n{"name": "get_wikipedia_summary", "arguments": {"topic": "The World of Warcraft"}}\n</tool_call>'
GROUNDED = INVENTED.replace("The World of Warcraft", "Roman Empire")


def decide_run(user: str, first: list[str]) -> tuple[ChatRun, list[RecordedHandle]]:
    """A ChatRun as start_chat wires decide mode, over recorded text: `first` is the
    decided reply, and a text reply stands ready as the second chance."""
    dialect = get_dialect("chatml-function")
    messages = [{"role": "user", "content": user}]
    handles = [RecordedHandle(first)]

    def again() -> tuple[Any, Any]:
        handles.append(RecordedHandle(["My name", " is SmolLM."]))  # no opener: see decide.answer_grammar
        return handles[-1], dialect.parser([WIKI], stream=False)

    run = ChatRun(handles[0], dialect.decision_parser([WIKI], stream=False), SimpleNamespace(dialect=dialect),  # type: ignore[arg-type]
                  calls_allowed=True, prompt="", stream=True, redo=Redo(Grounding(messages, [WIKI]), again))
    return run, handles


def pieces(text: str, size: int = 7) -> list[str]:
    return [text[i:i + size] for i in range(0, len(text), size)]


def summary(items: list[Any]) -> tuple[str, list[str], str]:
    content = "".join(e.text for e in items if isinstance(e, ContentDelta))
    names = [e.name for e in items if isinstance(e, CallStart)]
    finish = items[-1]
    assert isinstance(finish, Finish)
    return content, names, finish.finish_reason


def test_an_invented_call_is_replaced_by_the_text_reply() -> None:
    run, handles = decide_run("What's your name?", pieces(INVENTED))
    assert summary(list(run)) == ("My name is SmolLM.", [], "stop")
    assert len(handles) == 2 and handles[0].cancelled  # the call's generation was stopped


def test_a_grounded_call_goes_out_and_nothing_is_made_again() -> None:
    run, handles = decide_run("Tell me about the Roman Empire.", pieces(GROUNDED))
    assert summary(list(run)) == ("", ["get_wikipedia_summary"], "tool_calls")
    assert len(handles) == 1


def test_a_text_reply_is_not_judged() -> None:
    run, handles = decide_run("What's your name?", pieces("answer: I am a model."))
    assert summary(list(run)) == ("I am a model.", [], "stop")
    assert len(handles) == 1


def test_a_call_cut_by_max_tokens_is_dropped_not_shown_as_content() -> None:
    """The call branch cut short: nothing of it reaches the client as text."""
    run, handles = decide_run("Tell me about the Roman Empire.", [])
    run._handle = handles[0] = RecordedHandle(pieces(GROUNDED[:60]), finish_reason="length")
    assert summary(list(run)) == ("", [], "length")
    run, handles = decide_run("Tell me about the Roman Empire.", [])
    run._handle = handles[0] = RecordedHandle(pieces("answer: The Roman Em"), finish_reason="length")
    assert summary(list(run)) == ("The Roman Em", [], "length")  # the text branch cut keeps its text


def test_a_client_gone_before_the_rejection_gets_no_second_reply() -> None:
    """The client disconnects while the invented call arrives: nothing is made again."""
    run, handles = decide_run("What's your name?", [])

    class CancelledAtTheEnd(RecordedHandle):
        def __iter__(self) -> Any:
            first, *rest = pieces(INVENTED)
            yield first
            run.cancel()  # the client leaves; the engine had made the rest already
            yield from rest

    run._handle = handles[0] = CancelledAtTheEnd([])
    content, names, _ = summary(list(run))
    assert (content, names) == ("", [])
    assert len(handles) == 1 and handles[0].cancelled


def test_the_async_path_replaces_an_invented_call_too() -> None:
    class AsyncHandle(RecordedHandle):
        async def __aiter__(self) -> Any:  # type: ignore[override]
            for piece in self._pieces:
                if self.cancelled:
                    return
                yield piece

    dialect = get_dialect("chatml-function")
    handles: list[RecordedHandle] = [AsyncHandle(pieces(INVENTED))]

    def again() -> tuple[Any, Any]:
        handles.append(AsyncHandle(["Hello."]))
        return handles[-1], dialect.parser([WIKI], stream=False)

    grounding = Grounding([{"role": "user", "content": "What's your name?"}], [WIKI])
    run = ChatRun(handles[0], dialect.decision_parser([WIKI], stream=False), SimpleNamespace(dialect=dialect),  # type: ignore[arg-type]
                  calls_allowed=True, prompt="", redo=Redo(grounding, again))

    async def collect() -> list[Any]:
        return [item async for item in run]

    assert summary(asyncio.run(collect())) == ("Hello.", [], "stop")
