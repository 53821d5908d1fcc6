"""One chat request, from validated messages to parser events (no HTTP here).

The API layer and in-process callers both go through `start_chat`, so the
prompt, the grammar, the stop strings and the parsing of tool calls are
decided once, for every front end.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from localtools.dialects import ArgsDelta, CallEnd, CallStart, ContentDelta, Event
from localtools.dialects.decide import CALL_LEAN
from localtools.dialects.grounding import Grounding
from localtools.engine import GenerationStats, SamplingParams
from localtools.gbnf import Grammar
from localtools.prompting import build_prompt
from localtools.runtime import ModelRuntime
from localtools.templating import TemplateError

log = logging.getLogger("localtools.service")

PROMPT_TAIL_CHARS = 200


class ChatRequestError(Exception):
    """A request this model cannot take as it is (the client can fix it: HTTP 400)."""

    def __init__(self, message: str, param: str | None = None, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.param = param
        self.code = code


@dataclass
class ChatOptions:
    tools: list[dict[str, Any]] | None = None  # OpenAI tool dicts, already validated
    tool_choice: str | dict[str, Any] | None = None  # None = "auto" if tools else "none"
    parallel_tool_calls: bool = True
    response_format: dict[str, Any] | None = None
    sampling: SamplingParams = field(default_factory=SamplingParams)
    template_kwargs: dict[str, Any] = field(default_factory=dict)
    stream: bool = True  # False: the parser holds each call until complete


@dataclass
class Finish:
    finish_reason: str  # "stop" | "length" | "tool_calls" | "cancelled"
    stats: GenerationStats


ChatItem = Event | Finish


@dataclass
class Redo:
    """Decide mode's second chance: the first call is judged by `grounding`, and a call
    made of invented values is replaced by the reply `again()` starts (text only)."""

    grounding: Grounding
    again: Callable[[], tuple[Any, Any]]  # → (handle, parser) of the text-only reply


class ChatRun:
    """A running chat generation: iterate (sync or async) for events, then one Finish."""

    def __init__(
        self,
        handle: Any,
        parser: Any,
        runtime: ModelRuntime,
        calls_allowed: bool,
        prompt: str,
        stream: bool = True,
        calls_only: bool = False,
        max_calls: int | None = None,
        redo: Redo | None = None,
    ) -> None:
        self._handle = handle
        self._parser = parser
        self._dialect = runtime.dialect
        self._calls_allowed = calls_allowed
        self._calls_only = calls_only  # a strict grammar: the output is nothing but calls
        self._saw_call = False
        self._stream = stream
        self._done_calls: list[tuple[str, str]] = []  # (name, arguments) of finished calls
        self._current: _CallSoFar | None = None  # the call being streamed
        self._max_calls = max_calls  # parallel_tool_calls false: 1, whatever the grammar allows
        self._stopped_early = False  # a repeated call, or the last call allowed, ended generation
        self._redo = redo  # until the first call is judged (decide mode)
        self._first_call: list[Event] | None = None  # its events, held while it arrives
        self._rejected = False  # the first call was invented: the reply is made again as text
        self._cancelled = False
        self.prompt = prompt
        self.text_bytes = 0  # UTF-8 bytes of generated text received so far (logprobs are cut by it)

    @property
    def stats(self) -> GenerationStats:
        return self._handle.stats

    def cancel(self) -> None:
        """Stop generating (client gone); iteration then ends with finish 'cancelled'."""
        self._cancelled = True  # and no reply is made again as text after this
        self._handle.cancel()

    def _events(self, events: list[Event]) -> Iterator[Event]:
        for ev in events:
            if self._stopped_early:
                return
            if isinstance(ev, (CallStart, ArgsDelta, CallEnd)):
                if not self._calls_allowed:  # tool_choice "none": never a call
                    continue
                if isinstance(ev, CallStart):
                    self._saw_call = True
                    if ev.id is None:
                        ev = CallStart(ev.index, ev.name, self._dialect.new_call_id(ev.index))
                yield from self._unless_repeated(ev)
            else:
                yield ev

    # Small models under a calls-only grammar tend to repeat the same call until
    # max_tokens. A call is held back only while it is identical so far to one
    # already made; a complete repeat is dropped and ends the generation. So an
    # agent never runs the same call twice, and stream and non-stream agree.
    def _unless_repeated(self, ev: Event) -> Iterator[Event]:
        if isinstance(ev, CallStart):
            opened = _CallSoFar(ev.name, [a for name, a in self._done_calls if name == ev.name])
            self._current = opened
            if opened.same_as:
                opened.held = [ev]
            else:
                yield ev
            return
        current = self._current
        if current is None:
            yield ev
            return
        if isinstance(ev, ArgsDelta):
            current.add(ev.text)
            held = current.held
            if held is None:
                yield ev
                return
            held.append(ev)
            if not current.same_as:  # differs from every earlier call: send what was held
                current.held = None
                yield from held
            return
        # CallEnd
        self._current = None
        arguments = current.arguments()
        if current.held is not None and (current.name, arguments) in self._done_calls:
            self._stopped_early = True
            self._handle.cancel()
            return
        self._done_calls.append((current.name, arguments))
        if current.held is not None:
            yield from current.held
        yield ev
        # Dialects whose grammar cannot count calls (or that have no grammar in `auto`)
        # still return at most `max_calls`: generation ends after the last one allowed.
        if self._max_calls is not None and len(self._done_calls) >= self._max_calls:
            self._stopped_early = True
            self._handle.cancel()

    def _finish(self) -> Finish:
        reason = self._handle.stats.finish_reason
        if self._stopped_early:
            reason = "stop"
        if reason == "stop" and self._saw_call:
            reason = "tool_calls"
        return Finish(reason, self._handle.stats)

    def _final_events(self) -> list[Event]:
        """What the parser still holds when generation ends.

        The parser holds back only text that may open a call; at the end it
        flushes what never became one as content. After calls were sent (or
        under a strict grammar cut by max_tokens, where every character belongs
        to a call) that text is the head of a call cut short by max_tokens or a
        stop string (`<tool_call>\n{"name": "get_we`): it is dropped, never
        shown as content beside the calls.
        """
        events = self._parser.finish()
        cut = self._handle.stats.finish_reason in ("length", "cancelled")
        # decide mode: a reply that took the call branch is all call, as under a strict grammar
        cut_call = self._saw_call or (cut and (self._calls_only or getattr(self._parser, "took_call_branch", False)))
        if cut_call:
            events = [ev for ev in events if not isinstance(ev, ContentDelta)]
        return events

    def _screen(self, events: list[Event]) -> list[Event]:
        """Decide mode: hold the first call until complete, then keep it or reject it."""
        if self._redo is None:
            return events
        out: list[Event] = []
        for i, ev in enumerate(events):
            if self._first_call is not None:
                self._first_call.append(ev)
                if not isinstance(ev, CallEnd):
                    continue
                held, self._first_call = self._first_call, None
                start = held[0]
                arguments = "".join(e.text for e in held if isinstance(e, ArgsDelta))
                if isinstance(start, CallStart) and not self._redo.grounding.grounded(start.name, arguments):
                    log.info("decide: no value of the call to %s occurs in the conversation; answering in text",
                             start.name)
                    self._rejected = True
                    return out
                self._redo = None
                return out + held + events[i + 1:]
            if isinstance(ev, CallStart):
                self._first_call = [ev]
            else:
                out.append(ev)
        return out

    def _ending(self) -> list[Event]:
        """The screened final events (a first call still held at the end goes out as it is)."""
        events = self._screen(self._final_events())
        if self._first_call is not None and not self._rejected:
            events, self._first_call = events + self._first_call, None
        return events

    def _answer_instead(self) -> bool:
        """Drop the rejected reply and start the text-only one in its place (not once
        the client has gone: False, and the run ends as cancelled)."""
        assert self._redo is not None
        self._handle.cancel()
        if self._cancelled:
            return False
        self._handle, self._parser = self._redo.again()
        self._redo = None
        self._rejected = False
        self.text_bytes = 0
        return True

    def __iter__(self) -> Iterator[ChatItem]:
        while True:
            for piece in self._handle:
                self.text_bytes += len(piece.encode("utf-8"))
                yield from self._events(self._screen(self._parser.feed(piece)))
                if self._rejected:
                    break
            else:
                final = self._ending()
                if not self._rejected:
                    yield from self._events(final)
                    break
            if not self._answer_instead():
                break
        yield self._finish()

    async def __aiter__(self) -> AsyncIterator[ChatItem]:
        while True:
            async for piece in self._handle:
                self.text_bytes += len(piece.encode("utf-8"))
                for ev in self._events(self._screen(self._parser.feed(piece))):
                    yield ev
                if self._rejected:
                    break
            else:
                final = self._ending()
                if not self._rejected:
                    for ev in self._events(final):
                        yield ev
                    break
            if not self._answer_instead():
                break
        yield self._finish()


class _CallSoFar:
    """A call being streamed: its arguments so far and the earlier calls it still equals.

    Arguments are kept as parts and compared by offset, so each token costs the same
    however long the arguments grow (no re-copying of the text so far).
    """

    __slots__ = ("name", "parts", "length", "same_as", "held")

    def __init__(self, name: str, earlier: list[str]) -> None:
        self.name = name
        self.parts: list[str] = []
        self.length = 0
        self.same_as = earlier  # arguments of earlier calls to this tool that this one matches so far
        self.held: list[Event] | None = None  # events held back while identical so far

    def add(self, text: str) -> None:
        """Append an arguments fragment, dropping the earlier calls it no longer equals."""
        if self.same_as:
            offset = self.length
            self.same_as = [a for a in self.same_as if a.startswith(text, offset)]
        self.parts.append(text)
        self.length += len(text)

    def arguments(self) -> str:
        return "".join(self.parts)


def _response_format_grammar(response_format: dict[str, Any] | None) -> Grammar | None:
    """A strict grammar for `json_object` / `json_schema` response formats."""
    if not response_format or response_format.get("type") in (None, "text"):
        return None
    if response_format["type"] == "json_schema":
        schema = (response_format.get("json_schema") or {}).get("schema") or {"type": "object"}
    else:
        schema = {"type": "object"}
    from localtools.gbnf import json_schema_to_gbnf

    gbnf = json_schema_to_gbnf({"response": schema})
    return Grammar(gbnf=f"{gbnf}\nroot ::= response\n")


def render_prompt(runtime: ModelRuntime, messages: list[dict[str, Any]], options: ChatOptions) -> str:
    """The prompt text for these messages (raises ChatRequestError on template failure)."""
    choice = effective_tool_choice(options)
    tools = options.tools or None
    template = runtime.template_for(bool(tools) and choice != "none")
    try:
        return build_prompt(
            template,
            runtime.dialect,
            messages,
            tools,
            choice,
            options.template_kwargs,
            tool_prompt=runtime.tool_prompt,
        )
    except TemplateError as exc:
        raise ChatRequestError(str(exc), param="messages", code="template_error") from None


def effective_tool_choice(options: ChatOptions) -> str | dict[str, Any]:
    if options.tool_choice is not None:
        return options.tool_choice
    return "auto" if options.tools else "none"


def answers_tool_results(messages: list[dict[str, Any]]) -> bool:
    """Whether this turn follows tool results. Decide mode is for the turn that starts from
    the user: right after results an untrained model offered the call branch calls again
    and again (agent loops ran out of turns), so that turn keeps the dialect's native,
    lazy behaviour and the model answers in its own words unless it opens a call itself."""
    return bool(messages) and messages[-1].get("role") in ("tool", "function")


def start_chat(runtime: ModelRuntime, messages: list[dict[str, Any]], options: ChatOptions) -> ChatRun:
    """Render, constrain and submit one chat request; raises ChatRequestError or QueueFull."""
    choice = effective_tool_choice(options)
    tools = options.tools or []
    calls_allowed = bool(tools) and choice != "none"
    prompt = render_prompt(runtime, messages, options)
    tail = prompt[-PROMPT_TAIL_CHARS:]

    grammar: Grammar | None = None
    calls_only = False
    deciding = False  # `auto` decided at the first tokens: call or text (dialects/decide.py)
    if (calls_allowed and choice == "auto" and getattr(runtime, "auto_tools", "native") == "decide"
            and not answers_tool_results(messages)):
        grammar = runtime.dialect.decision_grammar(tools, options.parallel_tool_calls, prompt_tail=tail)
        deciding = grammar is not None
    if calls_allowed and not deciding:
        grammar = runtime.dialect.grammar(tools, choice, options.parallel_tool_calls, prompt_tail=tail)
        calls_only = grammar is not None and not grammar.lazy
    if grammar is None and not calls_allowed:
        grammar = _response_format_grammar(options.response_format)

    stop = list(options.sampling.stop)
    for s in runtime.dialect.stop_strings():
        if s not in stop:
            stop.append(s)
    sampling = dataclasses.replace(options.sampling, stop=stop, grammar=grammar or options.sampling.grammar)
    redo = None
    if deciding:
        sampling, redo = _decide_sampling(runtime, messages, tools, prompt, sampling, tail)

    # Holding calls until complete (non-streaming) exists so that a call the model
    # breaks becomes content whole. Under a strict grammar a call cannot break,
    # only be cut by max_tokens; parsing as a stream then closes a cut call the
    # same way in both modes, so streamed and non-streamed responses agree.
    # Decide mode: a small model may chain calls until max_tokens; calls are held until
    # complete in both modes, so a cut call is dropped alike instead of half-streamed.
    parse_as_stream = (options.stream or calls_only) and not deciding
    if deciding:
        parser = runtime.dialect.decision_parser(tools, prompt_tail=tail, stream=parse_as_stream)
    else:
        parser = runtime.dialect.parser(tools if calls_allowed else [], prompt_tail=tail, stream=parse_as_stream)
    handle = runtime.scheduler.submit(prompt, sampling)
    return ChatRun(
        handle, parser, runtime, calls_allowed, prompt, stream=options.stream, calls_only=calls_only,
        max_calls=None if options.parallel_tool_calls else 1, redo=redo,
    )


def _decide_sampling(
    runtime: ModelRuntime, messages: list[dict[str, Any]], tools: list[dict[str, Any]], prompt: str,
    sampling: SamplingParams, tail: str,
) -> tuple[SamplingParams, Redo | None]:
    """Decide mode's lean towards a call at the first token, and its check that the
    call is grounded in the conversation, with the text-only reply to fall back on."""
    opening = runtime.dialect.call_opening()
    if opening and CALL_LEAN:
        sampling = dataclasses.replace(sampling, first_token_bias=(opening, CALL_LEAN))
    answer = runtime.dialect.answer_grammar()
    if answer is None:
        return sampling, None
    text_only = dataclasses.replace(sampling, grammar=answer, first_token_bias=None)

    def again() -> tuple[Any, Any]:
        parser = runtime.dialect.parser(tools, prompt_tail=tail, stream=False)  # no opener to drop
        return runtime.scheduler.submit(prompt, text_only), parser

    return sampling, Redo(Grounding(messages, tools), again)


def start_completion(runtime: ModelRuntime, prompt: str, sampling: SamplingParams) -> Any:
    """Raw text completion (/v1/completions): the prompt goes to the model as is."""
    return runtime.scheduler.submit(prompt, sampling)


def start_fim(runtime: ModelRuntime, prefix: str, suffix: str, sampling: SamplingParams) -> Any:
    """Fill-in-the-middle (/v1/completions with `suffix`): the model's FIM tokens around
    prefix and suffix; ChatRequestError for a model whose GGUF declares none."""
    from localtools.engine.fim import fim_prompt_tokens, fim_tokens

    fim = fim_tokens(runtime.engine)
    if fim is None:
        raise ChatRequestError(
            f"The model {runtime.name!r} has no fill-in-the-middle tokens (its GGUF declares no "
            "prefix/suffix/middle tokens), so 'suffix' cannot be used; serve a code model trained "
            "for FIM, or send the prompt without 'suffix'.",
            param="suffix",
            code="fim_not_supported",
        )
    return runtime.scheduler.submit(fim_prompt_tokens(runtime.engine, prefix, suffix, fim), sampling)
