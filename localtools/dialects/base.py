"""The dialect contract: what every tool-call dialect gives the rest of localtools.

A dialect knows one model family's way of writing tool calls. It never sees
HTTP or OpenAI response shapes; it sees OpenAI-shaped *messages and tools*
(plain dicts) on the way in, and emits parser events on the way out.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol

from localtools.gbnf import Grammar  # re-exported: what `Dialect.grammar` returns

# --------------------------------------------------------------------------
# Parser events. The incremental parser turns generated text into these.
# Concatenating every event's text gives the final message; what is emitted
# is final (never taken back), so streaming can forward events as they come.
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class ContentDelta:
    text: str


@dataclass(frozen=True)
class ReasoningDelta:
    text: str


@dataclass(frozen=True)
class CallStart:
    """A tool call begins; its name is complete and is an offered tool."""

    index: int
    name: str
    id: str | None = None  # an id the model wrote itself (Mistral, Kimi), else None


@dataclass(frozen=True)
class ArgsDelta:
    """A fragment of the call's arguments JSON text."""

    index: int
    text: str


@dataclass(frozen=True)
class CallEnd:
    index: int


Event = ContentDelta | ReasoningDelta | CallStart | ArgsDelta | CallEnd


class StreamParser(Protocol):
    """Incremental parser over what the model generated after the prompt.

    Feeding the whole text at once, or the same text in any split, must yield
    the same concatenated result. `finish()` flushes what was held back.
    """

    def feed(self, text: str) -> list[Event]: ...

    def finish(self) -> list[Event]: ...


# --------------------------------------------------------------------------
# The assembled result of a parse.
# --------------------------------------------------------------------------


@dataclass
class ToolCall:
    name: str
    arguments_json: str
    id: str | None = None

    @property
    def arguments(self) -> dict[str, Any]:
        """The arguments as a dict ({} when the text is not a JSON object)."""
        try:
            value = json.loads(self.arguments_json) if self.arguments_json.strip() else {}
        except json.JSONDecodeError:
            return {}
        return value if isinstance(value, dict) else {}


@dataclass
class ParsedMessage:
    content: str | None = None
    tool_calls: list[ToolCall] = field(default_factory=list)
    reasoning: str | None = None


class MessageBuilder:
    """Folds parser events into a ParsedMessage (used by non-streaming paths)."""

    def __init__(self) -> None:
        self._content: list[str] = []
        self._reasoning: list[str] = []
        self._calls: list[ToolCall] = []

    def add(self, events: Iterable[Event]) -> None:
        for ev in events:
            if isinstance(ev, ContentDelta):
                self._content.append(ev.text)
            elif isinstance(ev, ReasoningDelta):
                self._reasoning.append(ev.text)
            elif isinstance(ev, CallStart):
                self._calls.append(ToolCall(name=ev.name, arguments_json="", id=ev.id))
            elif isinstance(ev, ArgsDelta):
                call = self._calls[ev.index]
                call.arguments_json += ev.text

    def build(self) -> ParsedMessage:
        content = "".join(self._content)
        reasoning = "".join(self._reasoning)
        return ParsedMessage(
            content=content or None,
            tool_calls=list(self._calls),
            reasoning=reasoning or None,
        )


def parse_all(parser: StreamParser, text: str) -> ParsedMessage:
    builder = MessageBuilder()
    builder.add(parser.feed(text))
    builder.add(parser.finish())
    return builder.build()


# --------------------------------------------------------------------------
# The dialect object.
# --------------------------------------------------------------------------


@dataclass
class Detection:
    dialect: str
    evidence: list[str]  # markers/snippets that matched in the template source
    source: str = "module"  # forced | pinned-spec | module | analysis | fallback


class Dialect:
    """Base class. Subclasses set `name` and override what differs."""

    name: str = ""
    summary: str = ""
    # Detection order, declared in each dialect module: the registry tries higher
    # priorities first, so a dialect whose markers are a subset of another's must
    # sit below it (e.g. hermes' <tool_call> below every <tool_call>-plus-more dialect).
    priority: int = 0

    def detect(self, template: str) -> list[str] | None:
        """Evidence (matched markers) if this dialect's template, else None."""
        return None

    # ---- prompt side -------------------------------------------------------
    def tool_system_prompt(self, tools: list[dict[str, Any]]) -> str | None:
        """Text explaining the tools, for templates that cannot render `tools`."""
        return None

    def format_calls(self, calls: list[dict[str, Any]]) -> str:
        """An assistant turn's tool calls written in this dialect (for history)."""
        raise NotImplementedError

    def new_call_id(self, index: int) -> str | None:
        """An id in the shape the model's template demands, or None for OpenAI's."""
        return None

    # ---- output side --------------------------------------------------------
    def parser(
        self, tools: list[dict[str, Any]] | None, prompt_tail: str = "", stream: bool = True
    ) -> StreamParser:
        """stream=True: calls are announced early and are final once sent.
        stream=False: each call is held until complete, so a broken call
        becomes content whole (non-streaming responses)."""
        raise NotImplementedError

    def grammar(
        self,
        tools: list[dict[str, Any]],
        tool_choice: str | dict[str, Any],
        parallel: bool,
        prompt_tail: str = "",
    ) -> Grammar | None:
        """GBNF constraining calls: whole output for required/named, lazy for auto."""
        return None

    # ---- `auto` for models that rarely open a call themselves (dialects/decide.py) ----
    auto_tools_default: str = "native"  # "decide": the first tokens choose call or text

    def decision_grammar(
        self, tools: list[dict[str, Any]], parallel: bool, prompt_tail: str = ""
    ) -> Grammar | None:
        """A grammar whose first choice is a call over `tools` or free text (None: this
        dialect cannot decide up front, and `auto` stays native)."""
        return None

    def decision_parser(
        self, tools: list[dict[str, Any]], prompt_tail: str = "", stream: bool = True
    ) -> StreamParser:
        """The parser for replies made under `decision_grammar`."""
        return self.parser(tools, prompt_tail, stream)

    def answer_grammar(self) -> Grammar | None:
        """Text only, not starting like a call: decide mode's reply made again as text."""
        return None

    def call_opening(self) -> str:
        """The text a call reply starts with (decide mode leans towards it at the first token)."""
        return ""

    def render_kwargs(self, tools: list[dict[str, Any]]) -> dict[str, Any]:
        """Extra variables this family's templates read (e.g. Functionary's
        `generate_schema_from_functions`); the client's kwargs override them."""
        return {}

    def for_template(self, template: str) -> Dialect:
        """The dialect configured for this template's variant (default: itself)."""
        return self

    def map_call_id(self, call_id: str) -> str:
        """A client's tool-call id in the form the template accepts (default: as is)."""
        return call_id

    def stop_strings(self) -> list[str]:
        return []
