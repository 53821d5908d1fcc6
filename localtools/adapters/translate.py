"""What every API translator shares: its error type, JSON type checks, ids, whitespace hold.

Each foreign API (Responses, Anthropic Messages, Ollama) is translated into one
OpenAI chat-completions request and its reply translated back; these helpers
keep the three translators consistent in how they refuse input and how their
streams agree with their non-streamed replies.
"""

from __future__ import annotations

import json
import secrets
import string
from collections.abc import Callable, Iterator
from typing import Any

from localtools.adapters.errors import AdapterError

_ALNUM = string.ascii_letters + string.digits

_JSON_NAMES = {
    str: "a string",
    int: "an integer",
    float: "a number",
    bool: "a boolean",
    dict: "an object",
    list: "an array",
    type(None): "null",
}


class TranslationError(AdapterError):
    """A foreign API's request that cannot be translated (status 4xx, 400 by default);
    each route renders it, like any AdapterError, in its API's shape."""

    def __init__(self, message: str, param: str | None = None, code: str | None = None, status: int = 400) -> None:
        super().__init__(status, message, param, code)


def new_id(prefix: str, length: int = 24) -> str:
    return prefix + "".join(secrets.choice(_ALNUM) for _ in range(length))


def json_type_name(value: Any) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    return {str: "string", dict: "object", list: "array", type(None): "null"}.get(type(value), type(value).__name__)


def expect(value: Any, kinds: type | tuple[type, ...], param: str) -> Any:
    """`value` if it has one of the JSON types `kinds`, else a 400 naming the param.

    Booleans are not integers here and integers are numbers, as in JSON Schema.
    """
    kinds = kinds if isinstance(kinds, tuple) else (kinds,)
    ok = any(
        isinstance(value, kind)
        and not (isinstance(value, bool) and kind in (int, float))
        for kind in kinds
    ) or (float in kinds and isinstance(value, int) and not isinstance(value, bool))
    if not ok:
        wanted = " or ".join(_JSON_NAMES.get(k, k.__name__) for k in kinds)
        raise TranslationError(
            f"Invalid type for '{param}': expected {wanted}, but got {json_type_name(value)}.", param=param
        )
    return value


def optional(body: dict[str, Any], key: str, kinds: type | tuple[type, ...], param: str | None = None) -> Any:
    """body[key] type-checked, or None when absent or null."""
    value = body.get(key)
    if value is None:
        return None
    return expect(value, kinds, param or key)


def required(body: dict[str, Any], key: str, kinds: type | tuple[type, ...], param: str | None = None) -> Any:
    param = param or key
    if body.get(key) is None:
        raise TranslationError(f"Missing required parameter: '{param}'.", param=param)
    return expect(body[key], kinds, param)


def objects(value: Any, param: str) -> Iterator[tuple[dict[str, Any], str]]:
    """Each element of the JSON array `value` with its param path, `param[i]`; a 400
    when `value` is not an array or an element is not an object."""
    expect(value, list, param)
    for i, element in enumerate(value):
        where = f"{param}[{i}]"
        expect(element, dict, where)
        yield element, where


def copy_optional(source: dict[str, Any], target: dict[str, Any], kinds: dict[str, type], param: str) -> None:
    """Copy each key of `kinds` that `source` sets (type-checked, under `param.key`) into `target`."""
    for key, kind in kinds.items():
        value = optional(source, key, kind, f"{param}.{key}")
        if value is not None:
            target[key] = value


def copy_in_range(
    source: dict[str, Any], target: dict[str, Any], limits: dict[str, tuple[str, type, float | None, float | None]],
    prefix: str = "",
) -> None:
    """Copy the numbers `limits` names, each as (target key, JSON type, low, high), range-checked."""
    for key, (name, kind, low, high) in limits.items():
        value = optional(source, key, kind, prefix + key)
        in_range(value, low, high, prefix + key)
        if value is not None:
            target[name] = value


def strings(value: Any, param: str) -> list[str]:
    """A JSON array of strings, type-checked item by item."""
    expect(value, list, param)
    for j, item in enumerate(value):
        expect(item, str, f"{param}[{j}]")
    return value


def function_tools(
    value: Any, function_of: Callable[[dict[str, Any], str], dict[str, Any]]
) -> list[dict[str, Any]] | None:
    """An API's `tools` array as chat-completions tools: `function_of(tool, param)` reads
    one tool into an OpenAI `function` object, or raises the 400 for a tool it refuses."""
    if value is None:
        return None
    return [{"type": "function", "function": function_of(tool, param)} for tool, param in objects(value, "tools")]


def set_output(chat: dict[str, Any], response_format: dict[str, Any] | None, template_kwargs: dict[str, Any]) -> None:
    """The response format and chat-template variables when given, and usage reported
    at the end of a stream (every translated stream reports it)."""
    if response_format is not None:
        chat["response_format"] = response_format
    if template_kwargs:
        chat["chat_template_kwargs"] = template_kwargs
    if chat.get("stream"):
        chat["stream_options"] = {"include_usage": True}


def set_tools(chat: dict[str, Any], tools: list[dict[str, Any]] | None, choice: Any,
              parallel: bool | None = None) -> None:
    """Put the translated tools, tool_choice and parallel_tool_calls on the chat body;
    a forced tool with no tools offered is a 400, as at OpenAI."""
    if tools:
        chat["tools"] = tools
        if choice is not None:
            chat["tool_choice"] = choice
        if parallel is not None:
            chat["parallel_tool_calls"] = parallel
    elif choice not in (None, "none", "auto"):
        raise TranslationError("Invalid value for 'tool_choice': a tool is forced but no tools are offered.",
                               param="tool_choice")


def in_range(value: float | None, low: float | None, high: float | None, param: str) -> None:
    if value is None:
        return
    if (low is not None and value < low) or (high is not None and value > high):
        bounds = f"between {low} and {high}" if high is not None else f"at least {low}"
        raise TranslationError(f"Invalid value for '{param}': {value} must be {bounds}.", param=param)


def positive_int(value: Any, param: str) -> int | None:
    if value is None:
        return None
    expect(value, int, param)
    if value < 1:
        raise TranslationError(f"Invalid value for '{param}': {value} must be at least 1.", param=param)
    return value


def arguments_object(arguments: str | None) -> dict[str, Any]:
    """A call's JSON arguments string as an object (APIs that send arguments as objects)."""
    if not arguments:
        return {}
    try:
        value = json.loads(arguments)
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def strip_for_calls(content: str | None, has_calls: bool) -> str:
    """The reply text as the non-streamed chat reply gives it (stripped beside calls)."""
    text = content or ""
    return text.strip() if has_calls else text


class TextHold:
    """Holds back trailing whitespace in streamed text so that stream and non-stream agree.

    The non-streamed chat reply strips its text when the reply also has tool calls.
    A stream cannot know yet whether a call follows, so the whitespace at the end
    of the text so far waits until more text shows it is inside the text (sent),
    or a call comes (dropped), or the reply ends without calls (sent).
    """

    def __init__(self) -> None:
        self._pending = ""

    def feed(self, text: str) -> str:
        """The part of the text so far that can be sent now."""
        body = self._pending + text
        stripped = body.rstrip()
        self._pending = body[len(stripped):]
        return stripped

    def flush(self, has_calls: bool) -> str:
        """At the end: the held whitespace, unless calls made the reply strip it."""
        pending, self._pending = self._pending, ""
        return "" if has_calls else pending

    def drop(self) -> None:
        """A call started: the held whitespace is stripped from the reply, never sent."""
        self._pending = ""


class ChunkTranslator:
    """The walk over `chat.completion.chunk` dicts that every stream translator shares.

    `feed` keeps the usage, the finish reason and the matched stop string, and hands
    each delta's reasoning, its content (trailing whitespace held back by `TextHold`)
    and its call fragments to the subclass hooks, in that order and only when
    non-empty; a fragment with an id opens a new call. So the three foreign streams
    order and strip their pieces exactly as the non-streamed replies do.
    """

    def __init__(self) -> None:
        self._hold = TextHold()
        self._calls = 0  # calls opened so far
        self._finish: str | None = None
        self._matched: Any = None  # the stop string that ended the reply (the chunk's `stop_reason`)
        self._usage: dict[str, Any] | None = None

    def feed(self, chunk: dict[str, Any]) -> list[dict[str, Any]]:
        """The translator's events (or pieces) for one chunk."""
        if chunk.get("usage"):
            self._usage = chunk["usage"]
        events: list[dict[str, Any]] = []
        for choice in chunk.get("choices") or []:
            delta = choice.get("delta") or {}
            if delta.get("reasoning_content"):
                events += self._reasoning(delta["reasoning_content"])
            text = self._hold.feed(delta.get("content") or "")
            if text:
                events += self._content(text)
            for call in delta.get("tool_calls") or []:
                fn = call.get("function") or {}
                if call.get("id"):
                    self._hold.drop()
                    events += self._call_start(call["id"], fn.get("name") or "")
                    self._calls += 1
                if fn.get("arguments"):
                    events += self._arguments(fn["arguments"])
            if choice.get("finish_reason"):
                self._finish = choice["finish_reason"]
                self._matched = choice.get("stop_reason")
        return events

    def _held_text(self) -> str:
        """At the end: the whitespace still held back, unless calls made the reply strip it."""
        return self._hold.flush(self._calls > 0)

    def _reasoning(self, text: str) -> list[dict[str, Any]]:
        return []

    def _content(self, text: str) -> list[dict[str, Any]]:
        return []

    def _call_start(self, call_id: str, name: str) -> list[dict[str, Any]]:
        return []

    def _arguments(self, fragment: str) -> list[dict[str, Any]]:
        return []
