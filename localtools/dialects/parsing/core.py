"""The shape-independent half of every streaming tool-call parser.

Design rules (the peers' streaming bugs are the reason for each):

* What is emitted is final. Text that might be the start of a marker is held
  back until decided; a call is announced (`CallStart`) only when its name is
  complete and is an offered tool; before that, a failed call is rolled back
  into content. After that, a call that breaks is closed with the JSON that
  makes its arguments valid, and the rest becomes content.
* Work per fed chunk is proportional to the chunk (plus held-back text), never
  to the length of the whole output: no re-parsing.
* Feeding the text whole or in any split yields the same events, merged.

The parser is a state machine: `state` is a bound method that consumes what
it can of `buf` from `pos` and returns True to run the next state at once.
This module holds feed/finish, content and reasoning text, marker search and
holdback, sections, and a call's begin/commit/rollback/end. How a call itself
is written is the call shape's business (json_shape, tag_shape, tagged_shape,
python_shape); the shape reaches the core only through the hooks at the end
of `ParserCore`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

from localtools.dialects.base import ArgsDelta, CallEnd, CallStart, ContentDelta, Event, ReasoningDelta
from localtools.dialects.jsonscan import JsonScanner
from localtools.dialects.parsing.schema import tool_table
from localtools.dialects.spec import DialectSpec

WS = " \t\r\n"
NAME_CHARS = re.compile(r"[A-Za-z0-9_\-.]*")
ID_CHARS = re.compile(r"[A-Za-z0-9_\-]*")
MAX_NAME = 128

MATCH, PARTIAL, NOMATCH = 0, 1, 2


def tokens(marker: str) -> list[str]:
    """A marker as whitespace-separated tokens: whitespace between is flexible."""
    return marker.split()


def json_escape(text: str) -> str:
    """Text as the inside of a JSON string (what streams into a string argument)."""
    return json.dumps(text, ensure_ascii=False)[1:-1]


class ParserCore:
    """Buffer, text, markers and the life of a call; see the module docstring."""

    def __init__(
        self,
        spec: DialectSpec,
        tools: list[dict[str, Any]] | None,
        prompt_tail: str = "",
        stream: bool = True,
    ) -> None:
        self.spec = spec
        # stream=True: a call is announced as soon as its name is known (what is
        # sent is final; a call that breaks later is closed validly).
        # stream=False: a call's events are held until it completes, so a call
        # that breaks is rolled back into content whole.
        self.stream = stream
        self.held: list[Event] | None = None
        self.held_ws = ""
        self.skip_ws = False
        self.tools = tool_table(tools)
        self.calls_enabled = bool(self.tools)
        self.buf = ""
        self.pos = 0
        self.final = False
        self.out: list[Event] = []
        self.n_calls = 0
        self.any_text = False  # non-whitespace content/reasoning emitted
        self.pending_ws = ""
        self.reason_started = False
        self.reason_ws = ""
        self.in_section = False
        self.section_array = False
        self.section_calls = 0
        self.pending_call = False

        s = spec
        self.reason_start = s.reasoning.start.strip() if s.reasoning else ""
        self.reason_end = s.reasoning.end.strip() if s.reasoning else ""
        self.in_reasoning = bool(self.reason_start) and prompt_tail.rstrip().endswith(self.reason_start)

        self._init_triggers()
        self.section_end = s.section_end
        self.python_tag = s.python_tag.strip()
        self.strip = [m for m in s.strip_markers if m]
        self.bare_opener = self._bare_call_opener()

        # the call being parsed
        self.mark = 0  # buffer index where the current call's trigger began
        self.mark_len = 0  # length of the trigger text (emitted as content on rollback)
        self.committed = False
        self.call_index = -1
        self.name: str | None = None
        self.call_id: str | None = None
        self.scanner: JsonScanner | None = None
        self.scanning_call_object = False  # the scanner reads the whole call object, not just its arguments
        self.obj_start = 0
        self.args_start = -1
        self.args_end = -1
        self.args_emitted = -1
        self.args_is_string = False
        self.value_starts: dict[str | None, int] = {}
        self.n_args = 0
        self.arg_key = ""
        self.arg_value_start = -1
        self.arg_is_string: bool | None = None
        self.arg_emitted = -1
        self.raw_stop = ""  # raw code for a python tool runs up to this marker ("" = to the end)
        # a resumable scan of a value still streaming in (keyed by where it starts), so
        # each token costs O(new text): QuotedObjectScan or BracketScan
        self.resume: Any = None

        self.state: Callable[[], bool] = self._st_text
        self._open_from_prompt(prompt_tail)

    def _init_triggers(self) -> None:
        """The first tokens that may open calls, and the section openers among them."""
        s = self.spec
        triggers: list[str] = []
        if s.trigger.strip():
            triggers.append(tokens(s.trigger)[0])
        triggers += self._lenient_triggers()
        # every section opener the parser accepts (first token -> (start, end))
        self.sections: dict[str, tuple[str, str]] = {}
        if s.section_start.strip():
            self.sections[tokens(s.section_start)[0]] = (s.section_start, s.section_end)
        for start, end in s.alt_sections:
            if start.strip():
                self.sections.setdefault(tokens(start)[0], (start, end))
                triggers.append(tokens(start)[0])
        self.triggers = [t for t in dict.fromkeys(triggers) if t]

    # ======================================================================
    # public API
    # ======================================================================
    def feed(self, text: str) -> list[Event]:
        if text:
            buf = self.buf
            if self.state == self._st_text and self.pos > 0:
                buf = buf[self.pos :]
                self.pos = 0
                self.resume = None
            # drop the attribute's reference first so CPython grows the string in place:
            # `self.buf += text` would copy the whole buffer on every token
            self.buf = ""
            buf += text
            self.buf = buf
            self._run()
        return self._take()

    def finish(self) -> list[Event]:
        self.final = True
        self._run()
        guard = 0
        while self.state != self._st_text and guard < 1000:
            guard += 1
            self._end_of_input_in_call()
            self._run()
        self._flush_text_end()
        return self._take()

    # ======================================================================
    # plumbing
    # ======================================================================
    def _run(self) -> None:
        while self.state():
            pass

    def _take(self) -> list[Event]:
        out, self.out = self.out, []
        merged: list[Event] = []
        for ev in out:
            if merged and type(ev) is type(merged[-1]):
                last = merged[-1]
                if isinstance(ev, ContentDelta):
                    merged[-1] = ContentDelta(last.text + ev.text)  # type: ignore[union-attr]
                    continue
                if isinstance(ev, ReasoningDelta):
                    merged[-1] = ReasoningDelta(last.text + ev.text)  # type: ignore[union-attr]
                    continue
                if isinstance(ev, ArgsDelta) and ev.index == last.index:  # type: ignore[union-attr]
                    merged[-1] = ArgsDelta(ev.index, last.text + ev.text)  # type: ignore[union-attr]
                    continue
            merged.append(ev)
        return merged

    def _skip_ws(self, p: int) -> int:
        buf = self.buf
        n = len(buf)
        while p < n and buf[p] in WS:
            p += 1
        return p

    def _match_at(self, p: int, toks: list[str]) -> tuple[int, int]:
        """Match whitespace-flexible tokens at p (leading whitespace skipped)."""
        buf = self.buf
        for tok in toks:
            p = self._skip_ws(p)
            rest = len(buf) - p
            if rest >= len(tok):
                if not buf.startswith(tok, p):
                    return NOMATCH, p
                p += len(tok)
            else:
                if tok.startswith(buf[p:]) and not self.final:
                    return PARTIAL, p
                return NOMATCH, p
        return MATCH, p

    def _match_closing(self, p: int, toks: list[str]) -> tuple[int, int]:
        """Match a closing marker leniently: its first token is required, later
        tokens are consumed when present (models drop e.g. </tool_call>)."""
        ok, q = self._match_at(p, toks[:1])
        if ok == NOMATCH and self._truncated_at_end(p, toks[0]):
            return MATCH, len(self.buf)
        if ok != MATCH:
            return ok, q
        for tok in toks[1:]:
            ok2, q2 = self._match_at(q, [tok])
            if ok2 == PARTIAL:
                return PARTIAL, p
            if ok2 == NOMATCH:
                if self._truncated_at_end(q, tok):
                    return MATCH, len(self.buf)
                break
            q = q2
        return MATCH, q

    def _truncated_at_end(self, p: int, tok: str) -> bool:
        """At the end of input, the start of a closing marker cut by max_tokens
        is markup, not content: it is dropped."""
        if not self.final:
            return False
        rest = self.buf[self._skip_ws(p) :]
        return bool(rest) and len(rest) < len(tok) and tok.startswith(rest)

    def _match_rest(self, marker: str, p: int) -> tuple[int, int]:
        """Match a marker's tokens after its first token (already consumed)."""
        toks = tokens(marker)[1:]
        if not toks:
            return MATCH, p
        return self._match_at(p, toks)

    # ---- text emission with whitespace holding ---------------------------------
    def _emit_text(self, text: str) -> None:
        if not text:
            return
        if self.in_reasoning:
            self._emit_reasoning(text)
            return
        if self.skip_ws:
            text = text.lstrip(WS)
            if not text:
                return
            self.skip_ws = False
            self.pending_ws = ""
        core = text.rstrip(WS)
        if core:
            self.out.append(ContentDelta(self.pending_ws + core))
            self.any_text = True
            self.pending_ws = text[len(core) :]
        else:
            self.pending_ws += text

    def _emit_reasoning(self, text: str) -> None:
        if not self.reason_started:
            text = text.lstrip(WS)
            if not text:
                return
            self.reason_started = True
        core = text.rstrip(WS)
        if core:
            self.out.append(ReasoningDelta(self.reason_ws + core))
            self.any_text = True
            self.reason_ws = text[len(core) :]
        else:
            self.reason_ws += text

    def _flush_text_end(self) -> None:
        if self.pending_ws and self.n_calls == 0:
            self.out.append(ContentDelta(self.pending_ws))
        self.pending_ws = ""

    # ======================================================================
    # text state: content or reasoning, watching for markers
    # ======================================================================
    def _markers(self) -> list[tuple[str, str]]:
        found: list[tuple[str, str]] = []
        if self.in_reasoning:
            if self.reason_end:
                found.append((self.reason_end, "reason_end"))
        elif self.reason_start:
            found.append((self.reason_start, "reason_start"))
        if self.calls_enabled:
            for t in self.triggers:
                found.append((t, "call"))
            if self.python_tag:
                found.append((self.python_tag, "python"))
        for m in self.strip:
            found.append((m, "strip"))
        return found

    def _st_text(self) -> bool:
        buf, pos = self.buf, self.pos
        if pos >= len(buf):
            return False
        if (
            self.spec.bare_json
            and self.calls_enabled
            and not self.in_reasoning
            and (not self.any_text or self.n_calls > 0)
            and not self.pending_ws.strip()
        ):
            p = self._skip_ws(pos)
            if p >= len(buf):
                if self.final:
                    self._emit_text(buf[pos:])
                    self.pos = len(buf)
                return False
            if buf[p] == self.bare_opener:
                self.pending_ws += buf[pos:p]
                self.pos = p
                self._begin_call(p, 1)
                self._begin_bare_calls(p)
                return True
        best_i, best_m, best_kind = -1, "", ""
        for marker, kind in self._markers():
            i = buf.find(marker, pos)
            if i >= 0 and (best_i < 0 or i < best_i):
                best_i, best_m, best_kind = i, marker, kind
        if best_i < 0:
            hold = 0 if self.final else self._holdback(buf, pos)
            end = len(buf) - hold
            if end > pos:
                self._emit_text(buf[pos:end])
                self.pos = end
            return False
        if not self.final and self._longer_marker_pending(buf, best_i, best_m):
            # e.g. "<|channel|>commentary" may still grow into "…commentary<|message|>"
            self._emit_text(buf[pos:best_i])
            self.pos = best_i
            return False
        self._emit_text(buf[pos:best_i])
        self.pos = best_i + len(best_m)
        if best_kind == "call":
            return self._on_call_trigger(best_i, best_m)
        if best_kind == "python":
            return self._start_python(best_i, len(best_m))
        if best_kind == "reason_start":
            self.pending_ws = ""
            self.in_reasoning = True
            self.reason_started = False
            self.reason_ws = ""
        elif best_kind == "reason_end":
            self.in_reasoning = False
            self.reason_ws = ""
            self.skip_ws = True
        return True

    def _on_call_trigger(self, at: int, marker: str) -> bool:
        """A call trigger's first token was found at `at`: a section, a call start or a name prefix."""
        self._begin_call(at, len(marker))
        spec = self.spec
        if marker in self.sections:
            start, self.section_end = self.sections[marker]
            return self._enter_section_after_first_token(start)
        if spec.call_start.strip() and marker == tokens(spec.call_start)[0]:
            ok, p = self._match_rest(spec.call_start, self.pos)
            if ok == PARTIAL:
                return self._wait_at(at)
            if ok == NOMATCH:
                return self._rollback()
            self.pos = p
            self.state = self._st_call_head
            return True
        return self._on_name_prefix_trigger(at)

    def _longer_marker_pending(self, buf: str, at: int, found: str) -> bool:
        """A longer marker starting with `found` could still complete at `at`."""
        tail = buf[at:]
        return any(
            len(m) > len(found) and m.startswith(found) and m.startswith(tail) for m, _ in self._markers()
        )

    def _wait_at(self, at: int) -> bool:
        """A multi-token trigger is incomplete: rescan from it when more text comes."""
        self.pending_call = False
        self.pos = at
        self.state = self._st_text
        return False

    def _holdback(self, buf: str, pos: int) -> int:
        """Length of the longest tail that could still grow into a marker."""
        longest = 0
        for marker, _ in self._markers():
            for k in range(min(len(marker) - 1, len(buf) - pos), 0, -1):
                if k <= longest:
                    break
                if buf.endswith(marker[:k]):
                    longest = k
                    break
        return longest

    # ======================================================================
    # calls: begin, commit, roll back, end
    # ======================================================================
    def _begin_call(self, mark: int, mark_len: int) -> None:
        self.mark = mark
        self.mark_len = mark_len
        self.pending_call = True
        self.committed = False
        self.name = None
        self.call_id = None
        self.scanner = None
        self.args_start = self.args_end = self.args_emitted = -1
        self.args_is_string = False
        self.value_starts = {}
        self.n_args = 0
        self.arg_value_start = -1
        self.arg_is_string = None

    def _commit(self) -> bool:
        """Announce the call; False (and roll back) if the name is not offered."""
        if self.name not in self.tools:
            return False
        if not self.stream:
            self.held = []  # this call's events wait here until it completes
            self.held_ws = self.pending_ws
        self.pending_ws = ""
        if self.in_reasoning:
            self.reason_ws = ""
        self.call_index = self.n_calls
        self.n_calls += 1
        self.section_calls += 1
        self.committed = True
        self.pending_call = False
        call_id = self.call_id if self._id_ok(self.call_id) else None
        if call_id is not None and self.spec.id_format:
            call_id = self.spec.id_format.format(name=self.name, id=call_id)
        self._call_event(CallStart(self.call_index, self.name, call_id))
        return True

    def _id_ok(self, value: str | None) -> bool:
        if not value:
            return False
        if self.spec.id_pattern:
            return re.fullmatch(self.spec.id_pattern, value) is not None
        return True

    def _call_event(self, event: Event) -> None:
        if self.held is not None:
            self.held.append(event)
        else:
            self.out.append(event)

    def _args(self, text: str) -> None:
        if text:
            self._call_event(ArgsDelta(self.call_index, text))

    def _rollback(self) -> bool:
        """Not a call after all: its trigger becomes content, scanning resumes after it."""
        self.resume = None
        start = self.mark
        self.state = self._st_text
        self.committed = False
        self.pending_call = False
        if self.in_section:
            self.in_section = False
        if self.mark_len:
            self._emit_text(self.buf[start : start + self.mark_len])
        self.pos = start + self.mark_len
        if self.mark_len == 0:
            # the call was opened by the prompt; nothing to re-emit — the text is content
            self.state = self._st_plain_until_trigger
        return True

    def _st_plain_until_trigger(self) -> bool:
        self.state = self._st_text
        return True

    def _end_call(self) -> None:
        self._call_event(CallEnd(self.call_index))
        if self.held is not None:
            self.out.extend(self.held)
            self.held = None
        self.committed = False
        self.scanner = None
        self.skip_ws = True

    def _break_call(self, at: int) -> bool:
        """The model broke a committed call: close it validly; the rest is content.

        When holding (stream=False) nothing was sent yet: roll the call back."""
        if self.held is not None:
            self.held = None
            self.n_calls -= 1
            self.section_calls -= 1
            self.committed = False
            self.scanner = None
            self.pending_ws = self.held_ws
            self.pending_call = True
            return self._rollback()
        self._close_args_for_repair()
        self._end_call()
        self.in_section = False
        self.pos = at
        self.state = self._st_text
        return True

    def _end_of_input_in_call(self) -> None:
        """finish() while inside a call: repair a committed one, roll back a pending one."""
        if self.committed:
            self._break_call(len(self.buf))
        elif self.pending_call:
            self._rollback()
        else:
            self.in_section = False
            self.section_array = False
            self.pos = len(self.buf)
            self.state = self._st_text

    # ======================================================================
    # sections: a block holding one or more calls
    # ======================================================================
    def _enter_section_after_first_token(self, start: str) -> bool:
        ok, p = self._match_rest(start, self.pos)
        if ok == PARTIAL:
            return self._wait_at(self.mark)
        if ok == NOMATCH:
            return self._rollback()
        self.pos = p
        self.in_section = True
        self.section_calls = 0
        self.section_array = False
        self.state = self._st_section_open
        return True

    def _st_section_open(self) -> bool:
        """Right after the section start: what the first call looks like is the shape's call."""
        p = self._skip_ws(self.pos)
        if p >= len(self.buf):
            if self.final:
                return self._rollback()
            return False
        return self._section_first_call(p)

    def _st_section(self) -> bool:
        """Between calls inside a section."""
        spec = self.spec
        p = self._skip_ws(self.pos)
        buf = self.buf
        if p >= len(buf):
            if self.final:
                if self.section_calls == 0:  # an opened section with no call in it stays content
                    return self._rollback()
                self.in_section = False
                self.state = self._st_text
                return True
            return False
        if self.section_array:
            ch = buf[p]
            if ch == "{":
                if self.section_calls:
                    self._begin_call(p, 0)
                    self.mark_len = 0
                self.pos = p
                self.state = self._st_json_object
                return True
            if self.section_calls == 0:
                return self._rollback()
            return self._leave_section(p)
        if spec.call_start.strip():
            ok, q = self._match_at(p, tokens(spec.call_start))
            if ok == PARTIAL:
                return False
            if ok == MATCH:
                if self.section_calls:
                    self._begin_call(p, q - p)
                self.pos = q
                self.state = self._st_call_head
                return True
        went_on = self._section_call_without_start(p)
        if went_on is not None:
            return went_on
        return self._leave_section(p)

    def _leave_section(self, p: int) -> bool:
        if self.section_end.strip():
            ok, q = self._match_closing(p, tokens(self.section_end))
            if ok == PARTIAL:
                return False
            if ok == MATCH:
                p = q
        self.in_section = False
        self.pos = p
        self.state = self._st_text
        return True

    # ======================================================================
    # after a call
    # ======================================================================
    def _st_after_call(self) -> bool:
        """After a call's arguments: optional args end, call end; then more calls or text."""
        spec = self.spec
        if spec.call_end.strip():
            ok, p = self._match_closing(self.pos, tokens(spec.call_end))
            if ok == PARTIAL:
                return False
            if ok == MATCH:
                self.pos = p
        if self.in_section:
            self.state = self._st_section
            return True
        self.state = self._st_after_bare_call if spec.bare_json else self._st_text
        return True

    def _st_after_bare_call(self) -> bool:
        """Llama 3 joins several bare calls with ';', Phi-4-mini's template with ','."""
        p = self._skip_ws(self.pos)
        if p >= len(self.buf) and not self.final:
            return False
        if p < len(self.buf) and (self.buf[p] == ";" or self.buf[p] == self.spec.call_sep.strip()):
            self.pos = p + 1
        self.state = self._st_text
        return True

    # ======================================================================
    # hooks: what differs by call shape (chosen once, by the parser's class)
    # ======================================================================
    def _lenient_triggers(self) -> list[str]:
        """Extra first tokens that open a call when the model skips the opener."""
        return []

    def _open_from_prompt(self, prompt_tail: str) -> None:
        """Start inside a call when the generation prompt already opened one."""

    def _bare_call_opener(self) -> str:
        """The character that opens calls written with no marker (`bare_json`)."""
        return "[" if self.spec.array else "{"

    def _begin_bare_calls(self, p: int) -> None:
        """Calls written with no marker begin at `p` (the call is begun)."""
        raise NotImplementedError

    def _on_name_prefix_trigger(self, at: int) -> bool:
        """The trigger found is the name prefix itself (shapes that name calls in markers)."""
        return self._rollback()

    def _section_first_call(self, p: int) -> bool:
        """The first non-space text of a section is at `p`."""
        raise NotImplementedError

    def _section_call_without_start(self, p: int) -> bool | None:
        """In a section with no call_start match at `p`: another call, or None (the section ends)."""
        return None

    def _st_call_head(self) -> bool:
        """After call_start: the call proper."""
        raise NotImplementedError

    def _st_json_object(self) -> bool:
        """A call written as a JSON object (json_object.py)."""
        raise NotImplementedError

    def _start_python(self, at: int, length: int) -> bool:
        """The python tag was found at `at` (python_tag.py)."""
        raise NotImplementedError

    def _close_args_for_repair(self) -> None:
        """Send what makes a broken committed call's arguments valid JSON."""
        raise NotImplementedError
