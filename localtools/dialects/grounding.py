"""Decide mode's check that a call is about the conversation, not invented.

A small untrained model offered a call branch takes it for questions no tool
fits ("Who painted the Mona Lisa?" → `order_pizza`), and it then fills the
arguments with what it can invent: placeholders (`"..."`), zeros, dates it
never read, the tool's own name. A call a user asked for nearly always carries
something from the conversation: a city, a number, a title. So in decide mode
the first call is held until complete and kept only when at least one of its
free values (strings and numbers the schema does not fix by `enum`/`const`)
occurs in the messages; otherwise the reply is made again as text. A call with
no free values at all (only booleans, enums, or no arguments) is not judged.

Matching is by words, case-insensitive: a string is grounded when it occurs
whole, or when one of its words of four or more letters (or with a digit)
occurs, a longer word allowed to extend a shorter one of four or more
("tomato"/"tomatoes", not "egg"/"eggs"). A number is grounded when the
messages hold it in digits, as an English number word, or as a percentage of it.
Measured on scripts/eval_tools.py: see the README's function-calling eval.
"""

from __future__ import annotations

import json
import re
from typing import Any

_WORD = re.compile(r"[^\W_]+", re.UNICODE)
_NUMBER = re.compile(r"\d+(?:[.,]\d+)*")
_NUMBER_WORDS = {
    "zero": 0, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7,
    "eight": 8, "nine": 9, "ten": 10, "eleven": 11, "twelve": 12, "dozen": 12, "thirteen": 13,
    "fourteen": 14, "fifteen": 15, "sixteen": 16, "seventeen": 17, "eighteen": 18,
    "nineteen": 19, "twenty": 20, "thirty": 30, "forty": 40, "fifty": 50, "sixty": 60,
    "seventy": 70, "eighty": 80, "ninety": 90, "hundred": 100, "thousand": 1000,
    "half": 0.5, "once": 1, "twice": 2, "single": 1, "pair": 2, "couple": 2,
}
_MIN_WORD = 4  # shorter words ("the", "of", "new") say nothing about where a value came from


def message_text(messages: list[dict[str, Any]]) -> str:
    """All text a client sent: message contents (string or text parts) and earlier calls' arguments."""
    out: list[str] = []
    for message in messages:
        content = message.get("content")
        if isinstance(content, str):
            out.append(content)
        elif isinstance(content, list):
            out.extend(str(part.get("text", "")) for part in content if isinstance(part, dict))
        for call in message.get("tool_calls") or []:
            out.append(str((call.get("function") or {}).get("arguments", "")))
    return "\n".join(out)


class Grounding:
    """The words and numbers of one conversation, to judge the calls made in reply to it."""

    def __init__(self, messages: list[dict[str, Any]], tools: list[dict[str, Any]]) -> None:
        text = message_text(messages)
        self._phrase = " " + " ".join(_words(text)) + " "
        self._words = set(_words(text))
        self._numbers = _numbers_in(text) | {float(v) for w, v in _NUMBER_WORDS.items() if w in self._words}
        self._schemas = {
            (t.get("function") or {}).get("name"): (t.get("function") or {}).get("parameters") or {}
            for t in tools
        }

    def grounded(self, name: str, arguments: str) -> bool:
        """False only for a call with free values none of which the conversation holds."""
        try:
            value = json.loads(arguments) if arguments.strip() else {}
        except ValueError:
            return True  # not ours to judge: the parser and the client see it as it is
        free = list(_free_values(value, self._schemas.get(name) or {}))
        return not free or any(self._holds(v) for v in free)

    def _holds(self, value: str | float) -> bool:
        if isinstance(value, str):
            return self._holds_text(value)
        return any(_close(value, n) or _close(value * 100, n) for n in self._numbers)

    def _holds_text(self, value: str) -> bool:
        words = _words(value)
        if not words:
            return False  # punctuation only: a placeholder such as "..."
        if " " + " ".join(words) + " " in self._phrase:
            return True
        telling = [w for w in words if len(w) >= _MIN_WORD or any(c.isdigit() for c in w)]
        return any(self._has_word(w) for w in telling)

    def _has_word(self, word: str) -> bool:
        if word in self._words:
            return True
        for other in self._words:
            shorter, longer = (word, other) if len(word) <= len(other) else (other, word)
            if len(shorter) >= _MIN_WORD and longer.startswith(shorter):
                return True
        return False


def _words(text: str) -> list[str]:
    return [w.lower() for w in _WORD.findall(text)]


def _numbers_in(text: str) -> set[float]:
    out: set[float] = set()
    for match in _NUMBER.findall(text):
        for form in (match.replace(",", ""), match.replace(",", ".")):
            try:
                out.add(float(form))
            except ValueError:
                continue
    return out


def _close(a: float, b: float) -> bool:
    return abs(a - b) <= 1e-9 * max(1.0, abs(a), abs(b))


def _free_values(value: Any, schema: Any) -> Any:
    """The strings and numbers in `value` that its schema leaves free (no enum/const)."""
    schema = schema if isinstance(schema, dict) else {}
    if "enum" in schema or "const" in schema or isinstance(value, bool) or value is None:
        return
    if isinstance(value, str):
        yield value
    elif isinstance(value, (int, float)):
        yield abs(float(value))
    elif isinstance(value, dict):
        props = schema.get("properties") if isinstance(schema.get("properties"), dict) else {}
        for key, item in value.items():
            yield from _free_values(item, props.get(key, {}))
    elif isinstance(value, list):
        for item in value:
            yield from _free_values(item, schema.get("items", {}))
