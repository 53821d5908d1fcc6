"""One incremental parser for every dialect that a `DialectSpec` describes.

Design rules (the peers' streaming bugs are the reason for each):

* What is emitted is final. Text that might be the start of a marker is held
  back until decided; a call is announced (`CallStart`) only when its name is
  complete and is an offered tool; before that, a failed call is rolled back
  into content. After that, a call that breaks is closed with the JSON that
  makes its arguments valid, and the rest becomes content.
* Work per fed chunk is proportional to the chunk (plus held-back text), never
  to the length of the whole output: no re-parsing.
* Feeding the text whole or in any split yields the same events, merged.
"""

from __future__ import annotations

import json
import re
from typing import Any, Callable

from localtools.dialects.base import (
    ArgsDelta,
    CallEnd,
    CallStart,
    ContentDelta,
    Event,
    ReasoningDelta,
)
from localtools.dialects.jsonscan import (
    DONE,
    DONE_BEFORE,
    ERROR,
    IN_STRING,
    _OBJ_KEY,
    JsonScanner,
    QuotedObjectScan,
    quoted_object_to_json,
)
from localtools.dialects.pycall import balanced_end, parse_loose_python_calls, parse_python_calls, python_literal
from localtools.dialects.spec import DialectSpec

_WS = " \t\r\n"
_NAME_CHARS = re.compile(r"[A-Za-z0-9_\-.]*")
_ID_CHARS = re.compile(r"[A-Za-z0-9_\-]*")
_MAX_NAME = 128
_CODE_TOOLS = ("python", "code_interpreter", "ipython")
_BUILTIN_CALL = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\.call\(")
_BUILTIN_PREFIX = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\.(c(a(l(l)?)?)?)?)?")

MATCH, PARTIAL, NOMATCH = 0, 1, 2


def _tokens(marker: str) -> list[str]:
    """A marker as whitespace-separated tokens: whitespace between is flexible."""
    return marker.split()


def tool_table(tools: list[dict[str, Any]] | None) -> dict[str, dict[str, Any]]:
    """Offered tool names -> their parameters schema."""
    table: dict[str, dict[str, Any]] = {}
    for tool in tools or []:
        fn = tool.get("function", tool) if isinstance(tool, dict) else {}
        name = fn.get("name") if isinstance(fn, dict) else None
        if isinstance(name, str):
            params = fn.get("parameters")
            table[name] = params if isinstance(params, dict) else {}
    return table


def param_is_string(schema: dict[str, Any], key: str) -> bool | None:
    """True/False when the tool schema types the parameter, None when unknown."""
    props = schema.get("properties") if isinstance(schema, dict) else None
    if not isinstance(props, dict) or key not in props or not isinstance(props[key], dict):
        return None
    typ = props[key].get("type")
    if typ == "string":
        return True
    if isinstance(typ, list):
        return typ == ["string"] or (set(typ) <= {"string", "null"} and "string" in typ)
    if typ is None and "enum" in props[key]:
        return all(isinstance(v, str) for v in props[key]["enum"])
    return False if typ is not None else None


class SpecParser:
    """Streaming parser generated from a DialectSpec (see module docstring)."""

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

        triggers: list[str] = []
        if s.trigger.strip():
            triggers.append(_tokens(s.trigger)[0])
        if s.shape != "json" and s.name_prefix.strip() and (s.call_start.strip() or s.section_start.strip()):
            # lenient: models sometimes skip the outer opener (Qwen3-Coder)
            if not s.section_start.strip():
                triggers.append(_tokens(s.name_prefix)[0])
        # every section opener the parser accepts (first token -> (start, end))
        self.sections: dict[str, tuple[str, str]] = {}
        if s.section_start.strip():
            self.sections[_tokens(s.section_start)[0]] = (s.section_start, s.section_end)
        for start, end in s.alt_sections:
            if start.strip():
                self.sections.setdefault(_tokens(start)[0], (start, end))
                triggers.append(_tokens(start)[0])
        self.section_end = s.section_end
        self.triggers = [t for t in dict.fromkeys(triggers) if t]
        self.python_tag = s.python_tag.strip()
        self.strip = [m for m in s.strip_markers if m]

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
        # a resumable scan of a value still streaming in (keyed by where it starts), so
        # each token costs O(new text): QuotedObjectScan or _BracketScan
        self.resume: Any = None

        self.state: Callable[[], bool] = self._st_text
        opener = (s.call_start + s.name_prefix).strip()
        if s.shape != "json" and opener and not s.section_start and prompt_tail.rstrip().endswith(opener):
            # the generation prompt already opened a call header (Functionary
            # v3.2 ends in ">>>", v2 in "<|recipient|>"): start at the name
            self._begin_call(0, 0)
            self.state = self._st_name_after_prefix
        elif (
            s.shape != "json" and s.call_start.strip() and s.name_prefix.strip() and not s.section_start
            and prompt_tail.rstrip().endswith(s.call_start.strip())
        ):
            # the prompt wrote the call start, the output goes on with the name prefix
            # (Muse: "<|start|>assistant" then " to=NAME"); anything else rolls back to text
            self._begin_call(0, 0)
            self.state = self._st_call_head

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
        while p < n and buf[p] in _WS:
            p += 1
        return p

    def _match_at(self, p: int, tokens: list[str]) -> tuple[int, int]:
        """Match whitespace-flexible tokens at p (leading whitespace skipped)."""
        buf = self.buf
        for tok in tokens:
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

    # ---- text emission with whitespace holding ---------------------------------
    def _emit_text(self, text: str) -> None:
        if not text:
            return
        if self.in_reasoning:
            self._emit_reasoning(text)
            return
        if self.skip_ws:
            text = text.lstrip(_WS)
            if not text:
                return
            self.skip_ws = False
            self.pending_ws = ""
        core = text.rstrip(_WS)
        if core:
            self.out.append(ContentDelta(self.pending_ws + core))
            self.any_text = True
            self.pending_ws = text[len(core) :]
        else:
            self.pending_ws += text

    def _emit_reasoning(self, text: str) -> None:
        if not self.reason_started:
            text = text.lstrip(_WS)
            if not text:
                return
            self.reason_started = True
        core = text.rstrip(_WS)
        if core:
            self.out.append(ReasoningDelta(self.reason_ws + core))
            self.any_text = True
            self.reason_ws = text[len(core) :]
        else:
            self.reason_ws += text

    def _drop_pending_ws(self) -> None:
        self.pending_ws = ""

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
        spec = self.spec
        if (
            spec.bare_json
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
            if buf[p] == ("[" if spec.shape == "python" or spec.array else "{"):
                self.pending_ws += buf[pos:p]
                self.pos = p
                self._begin_call(p, 1)
                if spec.shape == "python":
                    self.state = self._st_python_block
                elif spec.array:
                    # a bare JSON array of calls (xLAM)
                    self.in_section = True
                    self.section_array = True
                    self.section_calls = 0
                    self.section_end = ""
                    self.pos = p + 1
                    self.state = self._st_section
                else:
                    self.state = self._st_json_object
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
        if best_kind == "reason_start":
            self._drop_pending_ws()
            self.in_reasoning = True
            self.reason_started = False
            self.reason_ws = ""
            return True
        if best_kind == "reason_end":
            self.in_reasoning = False
            self.reason_ws = ""
            self.skip_ws = True
            return True
        if best_kind == "python":
            return self._start_python(best_i, len(best_m))
        if best_kind == "strip":
            return True
        # a call trigger
        self._begin_call(best_i, len(best_m))
        spec = self.spec
        if best_m in self.sections:
            start, self.section_end = self.sections[best_m]
            return self._enter_section_after_first_token(start)
        if spec.call_start.strip() and best_m == _tokens(spec.call_start)[0]:
            ok, p = self._match_rest(spec.call_start, self.pos)
            if ok == PARTIAL:
                return self._wait_at(best_i)
            if ok == NOMATCH:
                return self._rollback()
            self.pos = p
            self.state = self._st_call_head
            return True
        # the trigger is the name prefix itself (tag shapes)
        ok, p = self._match_rest(spec.name_prefix, self.pos)
        if ok == PARTIAL:
            return self._wait_at(best_i)
        if ok == NOMATCH:
            return self._rollback()
        self.pos = p
        self.state = self._st_name_after_prefix
        return True

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

    def _match_closing(self, p: int, tokens: list[str]) -> tuple[int, int]:
        """Match a closing marker leniently: its first token is required, later
        tokens are consumed when present (models drop e.g. </tool_call>)."""
        ok, q = self._match_at(p, tokens[:1])
        if ok == NOMATCH and self._truncated_at_end(p, tokens[0]):
            return MATCH, len(self.buf)
        if ok != MATCH:
            return ok, q
        for tok in tokens[1:]:
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
        toks = _tokens(marker)[1:]
        if not toks:
            return MATCH, p
        return self._match_at(p, toks)

    def _holdback(self, buf: str, pos: int) -> int:
        """Length of the longest tail that could still grow into a marker."""
        longest = 0
        tail_max = 0
        for marker, _ in self._markers():
            tail_max = max(tail_max, len(marker) - 1)
        if self.spec.bare_json and self.calls_enabled and not self.any_text:
            tail_max = max(tail_max, 1)
        start = max(pos, len(buf) - tail_max)
        for marker, _ in self._markers():
            for k in range(min(len(marker) - 1, len(buf) - pos), 0, -1):
                if k <= longest:
                    break
                if buf.endswith(marker[:k]):
                    longest = k
                    break
        _ = start
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
        self._drop_pending_ws()
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

    def _close_args_for_repair(self) -> None:
        spec = self.spec
        if spec.shape == "tagged":
            if self.arg_value_start >= 0 and self.arg_is_string:
                self._args('"')
            elif self.arg_value_start >= 0:
                self._args("null")
            self._args("}")
            return
        sc = self.scanner
        if self.args_emitted < 0:
            self._args("{}")
            return
        if sc is None:
            return
        if spec.shape == "json" or self.scanning_call_object:
            if self.args_end >= 0:
                return
            if self.args_is_string:  # "arguments": "{\"city..." is sent only when whole
                self._args(_repaired_string_args(self.buf[self.args_start : self.pos]))
                return
            suffix = sc.closing_suffix()  # closes the call object too: drop its '}'
            self._args(suffix[:-1] if suffix.endswith("}") else suffix)
        else:
            if not sc.finished:
                self._args(sc.closing_suffix())

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
        spec = self.spec
        if spec.shape == "python":
            self.state = self._st_python_block
            return True
        p = self._skip_ws(self.pos)
        if p >= len(self.buf):
            if self.final:
                return self._rollback()
            return False
        ch = self.buf[p]
        if spec.shape == "json" or spec.json_in_section:
            if ch == "[" and (spec.array or spec.json_in_section):
                self.section_array = True
                self.pos = p + 1
                self.state = self._st_section
                return True
            if ch == "{":
                self.pos = p
                self.state = self._st_json_object
                return True
            if spec.shape == "json":
                return self._rollback()
        self.state = self._st_section
        return True

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
            ok, q = self._match_at(p, _tokens(spec.call_start))
            if ok == PARTIAL:
                return False
            if ok == MATCH:
                if self.section_calls:
                    self._begin_call(p, q - p)
                self.pos = q
                self.state = self._st_call_head
                return True
        if spec.shape == "json" and not spec.call_start.strip() and buf[p] == "{" and self.section_calls:
            # several bare objects in one section (MiniMax-M1: one per line)
            self._begin_call(p, 0)
            self.pos = p
            self.state = self._st_json_object
            return True
        if spec.shape != "json":
            ok, q = self._match_at(p, _tokens(spec.name_prefix)) if spec.name_prefix.strip() else (MATCH, p)
            if ok == PARTIAL:
                return False
            if ok == MATCH and (spec.name_prefix.strip() or _NAME_CHARS.match(buf, p).end() > p):  # type: ignore[union-attr]
                if self.section_calls:
                    self._begin_call(p, q - p)
                self.pos = q
                self.state = self._st_name_after_prefix
                return True
        return self._leave_section(p)

    def _leave_section(self, p: int) -> bool:
        if self.section_end.strip():
            ok, q = self._match_closing(p, _tokens(self.section_end))
            if ok == PARTIAL:
                return False
            if ok == MATCH:
                p = q
        self.in_section = False
        if not self.committed and self.n_calls == 0:
            pass
        self.pos = p
        self.state = self._st_text
        return True

    # ======================================================================
    # json shape: a call is a JSON object
    # ======================================================================
    def _st_call_head(self) -> bool:
        spec = self.spec
        if spec.shape == "json":
            p = self._skip_ws(self.pos)
            if p >= len(self.buf):
                if self.final:
                    return self._rollback()
                return False
            if self.buf[p] != "{":
                return self._rollback()
            self.pos = p
            self.state = self._st_json_object
            return True
        start = self.pos
        if spec.id_first:
            m = _ID_CHARS.match(self.buf, start)
            start = m.end() if m else start
            if start >= len(self.buf) and not self.final:
                return False
            if start - self.pos > _MAX_NAME:
                return self._rollback()
            self.call_id = self.buf[self.pos : start] or None
        if spec.name_prefix.strip():
            ok, p = self._match_at(start, _tokens(spec.name_prefix))
            if ok == PARTIAL:
                return False
            if ok == NOMATCH:
                return self._rollback()
            self.pos = p
        elif spec.json_in_section:
            p = self._skip_ws(self.pos)
            if p >= len(self.buf):
                if self.final:
                    return self._rollback()
                return False
            if self.buf[p] == "{":
                self.pos = p
                self.state = self._st_json_object
                return True
            if self.buf[p] == "[":
                self.in_section = True
                self.section_array = True
                self.section_calls = 0
                self.pos = p + 1
                self.state = self._st_section
                return True
        self.state = self._st_name_after_prefix
        return True

    def _st_json_object(self) -> bool:
        if self.scanner is None:
            sc = JsonScanner()
            sc.on_top_value_start = self._on_value_start
            sc.on_top_value_end = self._on_value_end
            self.scanner = sc
            self.scanning_call_object = True
            self.obj_start = self.pos
            self.value_starts = {}
            self.args_start = self.args_end = self.args_emitted = -1
            self.name = None
            self.call_id = None
        sc = self.scanner
        buf = self.buf
        n = len(buf)
        p = self.pos
        while p < n:
            if sc.state == IN_STRING:
                q = sc.skip_plain(buf, p)
                if q != p:
                    p = q
                    continue
            r = sc.push(buf[p])
            if r == ERROR or r == DONE_BEFORE:
                self.pos = p
                return self._json_object_failed(p)
            p += 1
            if self.name is not None and not self.committed:
                self.pos = p
                if not self._commit():
                    return self._rollback()
            if r == DONE:
                self.pos = p
                return self._json_object_done()
        self.pos = p
        if self.committed:
            self._stream_json_args()
        if self.final:
            return False
        return False

    def _on_value_start(self, key: str | None, at: int) -> None:
        spec = self.spec
        absolute = self.obj_start + at
        self.value_starts[key] = absolute
        if spec.name_is_key and self.name is None and key is not None:
            self.name = key
            self.args_start = absolute
            self.args_is_string = self.buf[absolute] == '"'
            self.args_emitted = absolute
            return
        if key in spec.args_keys and self.args_start < 0:
            self.args_start = absolute
            self.args_is_string = self.buf[absolute] == '"'
            self.args_emitted = absolute

    def _on_value_end(self, key: str | None, end: int) -> None:
        spec = self.spec
        absolute = self.obj_start + end
        start = self.value_starts.get(key, -1)
        if start < 0:
            return
        if absolute == self.args_end or (self.args_start == start and self.args_end < 0):
            self.args_end = absolute
            return
        if key == spec.name_key and not spec.name_is_key and self.name is None:
            try:
                value = json.loads(self.buf[start:absolute])
            except ValueError:
                value = None
            self.name = value if isinstance(value, str) and value else ""
        elif spec.id_key and key == spec.id_key:
            try:
                value = json.loads(self.buf[start:absolute])
            except ValueError:
                value = None
            if isinstance(value, (str, int)):
                self.call_id = str(value)

    def _stream_json_args(self) -> None:
        if self.args_start < 0 or self.args_is_string:
            return
        upto = self.args_end if self.args_end >= 0 else self._before_dangling_comma(self.pos)
        if upto > self.args_emitted:
            self._args(self.buf[self.args_emitted : upto])
            self.args_emitted = upto

    def _before_dangling_comma(self, upto: int) -> int:
        """Where to stop sending arguments: before a comma that still awaits its next key.

        Sent text is final; were the output cut right after `{"a": 1,`, no
        closing text could make it valid JSON, so that comma waits for the key.
        """
        sc = self.scanner
        if sc is None or sc.state != _OBJ_KEY:
            return upto
        q = upto
        while q > self.args_emitted and self.buf[q - 1] in " \t\r\n":
            q -= 1
        return q - 1 if q > self.args_emitted and self.buf[q - 1] == "," else upto

    def _json_object_failed(self, at: int) -> bool:
        if not self.committed:
            return self._rollback()
        self._stream_json_args()
        return self._break_call(at)

    def _json_object_done(self) -> bool:
        if self.name is None or self.name == "":
            return self._rollback()
        if not self.committed and not self._commit():
            return self._rollback()
        if self.args_start < 0:
            self._args("{}")
        elif self.args_is_string:
            self._args(self._decode_string_args(self.buf[self.args_start : self.args_end]))
        else:
            self._stream_json_args()
        self._end_call()
        self.state = self._st_after_json_call
        return True

    @staticmethod
    def _decode_string_args(raw: str) -> str:
        """Arguments given as a JSON string holding JSON: decode once."""
        try:
            inner = json.loads(raw)
            value = json.loads(inner) if isinstance(inner, str) else inner
        except ValueError:
            return "{}"
        if not isinstance(value, dict):
            return "{}"
        return json.dumps(value, ensure_ascii=False)

    def _st_after_json_call(self) -> bool:
        spec = self.spec
        if self.section_array:
            p = self._skip_ws(self.pos)
            if p >= len(self.buf):
                if self.final:
                    self.in_section = False
                    self.state = self._st_text
                    return True
                return False
            ch = self.buf[p]
            if ch == ",":
                self.pos = p + 1
                self.state = self._st_section
                return True
            if ch == "]":
                self.section_array = False
                self.pos = p + 1
                return self._leave_section(self.pos)
            self.section_array = False
            return self._leave_section(p)
        self.state = self._st_after_call
        return True

    def _st_after_call(self) -> bool:
        """After a call's arguments: optional args end, call end; then more calls or text."""
        spec = self.spec
        if spec.call_end.strip():
            ok, p = self._match_closing(self.pos, _tokens(spec.call_end))
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
    # python shape: `[f(a=1), g()]` (or one call a line up to the section end),
    # held until the bracket closes, then every call at once
    # ======================================================================
    def _st_python_block(self) -> bool:
        buf = self.buf
        p = self._skip_ws(self.pos)
        if p >= len(buf):
            if self.final:
                return self._rollback()
            return False
        end_marker = self.section_end.strip() if self.in_section else ""
        if buf[p] == "[":
            scan = self.resume
            if not isinstance(scan, _BracketScan) or scan.start != p:
                scan = self.resume = _BracketScan(p, "[", "]")
            end = scan.end(buf)
            if end >= 0:
                self.resume = None
            if end < 0:
                if self.final:
                    return self._rollback()
                return False
            body, after = buf[p:end], end
        elif end_marker:
            scan = self.resume
            if not (isinstance(scan, list) and scan[0] == p):
                scan = self.resume = [p, p]  # [start, where the search resumes]
            end = buf.find(end_marker, scan[1])
            if end < 0:
                scan[1] = max(p, len(buf) - len(end_marker) + 1)
                if not self.final:
                    return False
                end = len(buf)
            self.resume = None
            body, after = buf[p:end], end
        else:
            return self._rollback()
        code = _strip_code_fence(body)
        calls = parse_python_calls(code) or parse_loose_python_calls(code, self.tools)
        if not calls or any(name not in self.tools for name, _ in calls):
            return self._rollback()
        for name, args in calls:
            self.name = name
            self._commit()
            self._args(json.dumps(schema_typed_args(args, self.tools[name]), ensure_ascii=False))
            self._end_call()
        self.pos = after
        self.state = self._st_python_section_end if self.in_section else self._st_text
        return True

    def _st_python_section_end(self) -> bool:
        return self._leave_section(self.pos)

    # ======================================================================
    # tag shapes: the name sits in markers
    # ======================================================================
    def _st_name_after_prefix(self) -> bool:
        buf = self.buf
        p = self.pos
        if self.spec.name_prefix.endswith((" ", "\t")):
            # a prefix ending in a space ("<fn "): markers match as tokens, so skip it
            while p < len(buf) and buf[p] in " \t":
                p += 1
            if p >= len(buf) and not self.final:
                return False
            self.pos = p
        m = _NAME_CHARS.match(buf, p)
        end = m.end() if m else p
        if end - p > _MAX_NAME:
            return self._rollback()
        if end >= len(buf) and not self.final:
            return False
        name = buf[p:end]
        if not name:
            return self._rollback()
        spec = self.spec
        q = end
        if spec.name_suffix.strip():
            suffix = spec.name_suffix
            if "{name}" in suffix:
                # the header repeats the name (Muse's <invoke name="NAME">); text to the
                # content name ends its header at the first tag ("to=user<|message|>")
                head = suffix.split("{name}")[0]
                cut = head.find(">") + 1
                suffix = head[: cut or len(head)] if name == spec.content_name else suffix.replace("{name}", name)
            ok, q = self._match_at(end, _tokens(suffix))
            if ok == PARTIAL:
                return False
            if ok == NOMATCH:
                return self._rollback()
        elif spec.name_suffix and q < len(buf) and buf[q] == spec.name_suffix[0]:
            q += 1
        if spec.content_name and name == spec.content_name:
            # a turn addressed to the user: what follows is content
            self.pos = q
            self.in_section = False
            self.state = self._st_text
            return True
        self.name = name
        self.pos = q
        self.state = self._st_call_id
        return True

    def _st_call_id(self) -> bool:
        spec = self.spec
        if spec.id_prefix.strip():
            ok, p = self._match_at(self.pos, _tokens(spec.id_prefix))
            if ok == PARTIAL:
                return False
            if ok == MATCH:
                m = _ID_CHARS.match(self.buf, p)
                end = m.end() if m else p
                if end >= len(self.buf) and not self.final:
                    return False
                self.call_id = self.buf[p:end]
                self.pos = end
        self.state = self._st_args_open
        return True

    def _st_args_open(self) -> bool:
        spec = self.spec
        if spec.header_skip and spec.args_start.strip():
            # a header between name and arguments (harmony: "<|channel|>commentary json")
            marker = spec.args_start.strip()
            window = self.buf[self.pos : self.pos + spec.header_skip + len(marker)]
            i = window.find(marker)
            if i < 0:
                if len(window) < spec.header_skip + len(marker) and not self.final:
                    return False
                return self._rollback()
            self.pos += i + len(marker)
        elif spec.args_start.strip():
            ok, p = self._match_at(self.pos, _tokens(spec.args_start))
            if ok == PARTIAL:
                return False
            if ok == MATCH:
                self.pos = p
        if not self._commit():
            return self._rollback()
        if spec.shape == "tagged":
            self._args("{")
            self.n_args = 0
            self.state = self._st_tagged_args
        else:
            self.state = self._st_args_json_begin
        return True

    def _st_args_json_begin(self) -> bool:
        p = self._skip_ws(self.pos)
        if p >= len(self.buf):
            if self.final:
                return self._break_call(p)
            return False
        if self.buf[p] != "{" and self.name in _CODE_TOOLS and self.spec.name_prefix.strip():
            # Functionary: ">>>python\n<code>" — raw code up to the next call
            self.pos = p
            self.raw_stop = self.spec.name_prefix.strip()
            self.state = self._st_raw_code
            self._args("{" + json.dumps(self._code_key()) + ': "')
            return True
        if self.buf[p] != "{":
            # no arguments object: a parameterless call (or a broken one)
            self._args("{}")
            self._end_call()
            self.pos = p
            self.state = self._st_after_call
            return True
        self.pos = p
        if self.spec.args_string_quote:
            self.state = self._st_args_quoted
            return True
        sc = JsonScanner()
        self.scanner = sc
        self.scanning_call_object = False
        self.args_emitted = p
        self.state = self._st_args_json
        return True

    def _st_args_quoted(self) -> bool:
        """Relaxed-object arguments (Gemma 4): held until the object closes."""
        quote = self.spec.args_string_quote
        scan = self.resume
        if not isinstance(scan, QuotedObjectScan) or scan.start != self.pos:
            scan = self.resume = QuotedObjectScan(self.pos, quote)
        end = scan.end(self.buf)
        if end >= 0:
            self.resume = None
        if end < 0:
            if self.final:
                return self._break_call(self.pos)
            return False
        args = quoted_object_to_json(self.buf[self.pos : end], quote)
        if args is None:
            return self._break_call(self.pos)
        self._args(_typed_quoted_args(args, self.tools.get(self.name or "", {})))
        self.pos = end
        self._end_call()
        self.state = self._st_args_close
        return True

    def _st_args_json(self) -> bool:
        sc = self.scanner
        assert sc is not None
        buf = self.buf
        n = len(buf)
        p = self.pos
        while p < n:
            if sc.state == IN_STRING:
                q = sc.skip_plain(buf, p)
                if q != p:
                    p = q
                    continue
            r = sc.push(buf[p])
            if r == ERROR or r == DONE_BEFORE:
                self._args(buf[self.args_emitted : self._before_dangling_comma(p)])
                self.args_emitted = max(self.args_emitted, p)
                self.pos = p
                return self._break_call(p)
            p += 1
            if r == DONE:
                self._args(buf[self.args_emitted : p])
                self.args_emitted = p
                self.pos = p
                self._end_call()
                self.state = self._st_args_close
                return True
        upto = self._before_dangling_comma(p)
        self._args(buf[self.args_emitted : upto])
        self.args_emitted = max(self.args_emitted, upto)
        self.pos = p
        return False

    def _st_args_close(self) -> bool:
        spec = self.spec
        if spec.args_end.strip():
            ok, p = self._match_at(self.pos, _tokens(spec.args_end))
            if ok == PARTIAL:
                return False
            if ok == MATCH:
                self.pos = p
        self.state = self._st_after_call
        return True

    # ---- tagged arguments --------------------------------------------------------
    def _st_tagged_args(self) -> bool:
        spec = self.spec
        p = self.pos
        end_first = bool(spec.call_end.strip()) and spec.call_end.strip().startswith(spec.arg_name_prefix.strip())
        if end_first:
            # the call's end begins like an argument tag (MiniMax-M3 "…[</invoke>"): try it first
            ok, q = self._match_at(p, _tokens(spec.call_end))
            if ok == PARTIAL:
                return False
            if ok == MATCH:
                self._args("}")
                self._end_call()
                self.pos = q
                self.state = self._st_after_call_tagged
                return True
        ok, q = self._match_at(p, _tokens(spec.arg_name_prefix))
        if ok == PARTIAL:
            return False
        if ok == MATCH:
            self.pos = q
            self.state = self._st_arg_name
            return True
        ok, q = self._match_closing(p, _tokens(spec.call_end)) if spec.call_end.strip() else (NOMATCH, p)
        if ok == PARTIAL:
            return False
        if ok == MATCH:
            self._args("}")
            self._end_call()
            self.pos = q
            self.state = self._st_after_call_tagged
            return True
        if self.final and self._skip_ws(p) >= len(self.buf):
            self._args("}")
            self._end_call()
            self.pos = len(self.buf)
            self.state = self._st_text
            return True
        return self._break_call(self._skip_ws(p))

    def _st_after_call_tagged(self) -> bool:
        if self.in_section:
            self.state = self._st_section
        else:
            self.state = self._st_text
        return True

    def _st_arg_name(self) -> bool:
        spec = self.spec
        suffix = _tokens(spec.arg_name_suffix)
        buf = self.buf
        stop = suffix[0] if suffix else "\n"
        i = buf.find(stop, self.pos)
        if i < 0:
            if len(buf) - self.pos > _MAX_NAME:
                return self._break_call(self.pos)
            if self.final:
                return self._break_call(self.pos)
            return False
        key = buf[self.pos : i].strip()
        flag: str | None = None
        if spec.arg_flag_sep and spec.arg_flag_sep in key:
            key, flag = key.split(spec.arg_flag_sep, 1)
        ok, q = self._match_at(i, suffix) if suffix else (MATCH, i + 1)
        if ok == PARTIAL:
            return False
        if ok == NOMATCH or not key:
            return self._break_call(self.pos)
        if spec.arg_value_prefix.strip():
            ok, q2 = self._match_at(q, _tokens(spec.arg_value_prefix))
            if ok == PARTIAL:
                return False
            if ok == NOMATCH:
                return self._break_call(q)
            q = q2
        if q < len(buf) and buf[q] == "\n":
            q += 1
        elif q >= len(buf) and not self.final:
            return False
        self.arg_key = key
        schema = self.tools.get(self.name or "", {})
        self.arg_is_string = param_is_string(schema, key)
        if flag is not None:
            self.arg_is_string = flag.strip().lower() in ("true", "string")
        sep = ", " if self.n_args else ""
        self.n_args += 1
        self._args(f"{sep}{json.dumps(key, ensure_ascii=False)}: ")
        self.arg_value_start = q
        self.arg_emitted = q
        if self.arg_is_string:
            self._args('"')
        self.pos = q
        self.state = self._st_arg_value
        return True

    def _st_arg_value(self) -> bool:
        spec = self.spec
        toks = self._value_suffix_tokens()
        stop = toks[0] if toks else "\n"
        buf = self.buf
        i = buf.find(stop, self.arg_emitted if self.arg_is_string else self.arg_value_start)
        if i < 0:
            if self.final:
                i = len(buf)
            else:
                if self.arg_is_string:
                    hold = self._value_holdback(buf, stop)
                    upto = len(buf) - hold
                    if upto > self.arg_emitted:
                        self._args(_json_escape(buf[self.arg_emitted : upto]))
                        self.arg_emitted = upto
                return False
        value_end = i
        if value_end > self.arg_value_start and buf[value_end - 1] == "\n":
            value_end -= 1
        if self.arg_is_string:
            if value_end > self.arg_emitted:
                self._args(_json_escape(buf[self.arg_emitted : value_end]))
            self._args('"')
        else:
            raw = buf[self.arg_value_start : value_end]
            nested = _nested_elements(raw, spec) if "{key}" in spec.arg_value_suffix else None
            self._args(json.dumps(nested, ensure_ascii=False) if nested else _typed_value(raw, self.arg_is_string))
        self.arg_value_start = -1
        ok, q = self._match_at(i, toks) if toks and i < len(buf) else (MATCH, i)
        if ok == PARTIAL:
            # the stop token matched; later tokens incomplete: wait on the remainder
            self.pos = i
            self.state = self._st_arg_value_close
            return False
        self.pos = q
        self.state = self._st_tagged_args
        return True

    def _st_arg_value_close(self) -> bool:
        toks = self._value_suffix_tokens()
        ok, q = self._match_at(self.pos, toks)
        if ok == PARTIAL:
            return False
        self.pos = q if ok == MATCH else self.pos + len(toks[0])
        self.state = self._st_tagged_args
        return True

    def _value_suffix_tokens(self) -> list[str]:
        """The value's closing marker; "{key}" in it names the argument (MiniMax-M3 "</city>")."""
        suffix = self.spec.arg_value_suffix
        if "{key}" in suffix:
            suffix = suffix.replace("{key}", self.arg_key)
        return _tokens(suffix)

    def _code_key(self) -> str:
        schema = self.tools.get(self.name or "", {})
        props = schema.get("properties") if isinstance(schema, dict) else None
        return next(iter(props), "code") if isinstance(props, dict) and props else "code"

    @staticmethod
    def _value_holdback(buf: str, stop: str) -> int:
        """Hold a tail that may begin the value's closing marker (and its newline)."""
        hold = 0
        n = len(buf)
        first = stop[0]
        j = buf.find(first, max(0, n - len(stop) + 1))  # usually -1: one C-level search
        while j >= 0:
            if stop.startswith(buf[j:]):
                hold = n - j
                break
            j = buf.find(first, j + 1)
        if len(buf) > hold and buf[len(buf) - hold - 1] == "\n":
            hold += 1
        return hold

    # ---- python tag: a JSON call, a built-in call, or raw code -----------------
    def _start_python(self, at: int, length: int) -> bool:
        self._begin_call(at, length)
        buf = self.buf
        p = self._skip_ws(self.pos)
        if p >= len(buf) and not self.final:
            return self._wait_at(at)
        if p < len(buf) and buf[p] == "{":
            # <|python_tag|>{"name": …}: a JSON call after the tag
            self.pos = p
            self.state = self._st_json_object
            return True
        head = buf[p : p + 64]
        if _BUILTIN_CALL.match(head):
            self.pos = p
            self.state = self._st_builtin_call
            return True
        if not self.final and _BUILTIN_PREFIX.fullmatch(head):
            return self._wait_at(at)  # may still become NAME.call(

        target = next((n for n in _CODE_TOOLS if n in self.tools), None)
        if target is None:
            return self._rollback()
        self.name = target
        self.pos = p
        return self._start_raw_code(stop="")

    def _st_builtin_call(self) -> bool:
        """``brave_search.call(query="…")``: held until the parenthesis closes."""
        buf = self.buf
        open_at = buf.find("(", self.pos)
        end = balanced_end(buf, open_at, "(", ")")
        if end < 0:
            if self.final:
                return self._rollback()
            return False
        calls = parse_python_calls(buf[self.pos : end])
        if not calls or len(calls) != 1:
            return self._rollback()
        self.name, args = calls[0]
        if not self._commit():
            return self._rollback()
        self._args(json.dumps(args, ensure_ascii=False))
        self._end_call()
        self.pos = end
        self.state = self._st_text
        return True

    def _start_raw_code(self, stop: str) -> bool:
        """Code written raw for a python tool: becomes {"<param>": "<code>"}."""
        if not self._commit():
            return self._rollback()
        schema = self.tools.get(self.name or "", {})
        props = schema.get("properties") if isinstance(schema, dict) else None
        key = next(iter(props), "code") if isinstance(props, dict) and props else "code"
        self._args("{" + json.dumps(key) + ': "')
        self.raw_stop = stop
        self.state = self._st_raw_code
        return True

    raw_stop = ""

    def _st_raw_code(self) -> bool:
        buf = self.buf
        stop = self.raw_stop
        end = buf.find(stop, self.pos) if stop else -1
        if end >= 0:
            upto = end
        elif self.final:
            upto = len(buf)
        else:
            hold = 0
            if stop:
                for k in range(min(len(stop) - 1, len(buf) - self.pos), 0, -1):
                    if buf.endswith(stop[:k]):
                        hold = k
                        break
            upto = len(buf) - hold
        if upto > self.pos:
            self._args(_json_escape(buf[self.pos : upto]))
            self.pos = upto
        if end >= 0 or self.final:
            self._args('"}')
            self._end_call()
            self.state = self._st_text
            return True
        return False


_PY_PLAIN = re.compile(r"[^\"'\\\[\]]+")


class _BracketScan:
    """`pycall.balanced_end` for streamed text: resumes where the last call stopped."""

    __slots__ = ("start", "open_ch", "close_ch", "plain", "i", "depth", "quote")

    def __init__(self, start: int, open_ch: str, close_ch: str) -> None:
        self.start = start
        self.open_ch = open_ch
        self.close_ch = close_ch
        self.plain = _PY_PLAIN if (open_ch, close_ch) == ("[", "]") else None
        self.i = start
        self.depth = 0
        self.quote = ""

    def end(self, text: str) -> int:
        """Index just past the bracket closing the one at `start`, or -1 if not yet."""
        i, depth, quote, n = self.i, self.depth, self.quote, len(text)
        while i < n:
            if quote:
                j = text.find(quote, i)
                k = text.find("\\", i, j if j >= 0 else n)
                if k >= 0:
                    i = k + 2
                    continue
                if j < 0:
                    i = n
                    break
                i, quote = j + 1, ""
                continue
            if self.plain is not None:
                m = self.plain.match(text, i)
                if m is not None:
                    i = m.end()
                    continue
            ch = text[i]
            if ch in "\"'":
                quote = ch
            elif ch == self.open_ch:
                depth += 1
            elif ch == self.close_ch:
                depth -= 1
                if depth == 0:
                    self.i, self.depth, self.quote = i + 1, 0, ""
                    return i + 1
            i += 1
        self.i, self.depth, self.quote = i, depth, quote
        return -1


def _strip_code_fence(text: str) -> str:
    """Calls inside a ```python fence (MiniCPM3) are the calls themselves."""
    body = text.strip()
    if body.startswith("```"):
        body = body[3:]
        newline = body.find("\n")
        body = body[newline + 1 :] if newline >= 0 else ""
        if body.rstrip().endswith("```"):
            body = body.rstrip()[:-3]
    return body


def _repaired_string_args(raw: str) -> str:
    """Arguments written as a JSON string and cut short, closed as an object ("{}" if hopeless)."""
    for tail in ('"', '\\"', ""):
        try:
            inner = json.loads(raw + tail)
            break
        except ValueError:
            continue
    else:
        return "{}"
    if not isinstance(inner, str) or not inner.lstrip().startswith("{"):
        return "{}"
    sc = JsonScanner()
    for ch in inner:
        if sc.push(ch) in (ERROR, DONE_BEFORE):
            return "{}"
    text = inner + ("" if sc.finished else sc.closing_suffix())
    try:
        return text if isinstance(json.loads(text), dict) else "{}"
    except ValueError:
        return "{}"


def _json_escape(text: str) -> str:
    return json.dumps(text, ensure_ascii=False)[1:-1]


def _nested_elements(raw: str, spec: DialectSpec, depth: int = 0) -> dict[str, Any] | None:
    """An object written as child elements named after its keys (MiniMax-M3's
    template: `<when><date>…</date><time>…</time></when>`), or None."""
    opener, name_end = spec.arg_name_prefix.strip(), spec.arg_name_suffix.strip()
    text = raw.strip()
    if depth > 32 or not opener or not name_end or not text.startswith(opener):
        return None
    out: dict[str, Any] = {}
    pos = 0
    while pos < len(text):
        if not text.startswith(opener, pos):
            return None
        k = text.find(name_end, pos + len(opener))
        if k < 0:
            return None
        key = text[pos + len(opener) : k]
        close = spec.arg_value_suffix.strip().replace("{key}", key)
        v = text.find(close, k + len(name_end))
        if not key or v < 0:
            return None
        value = text[k + len(name_end) : v]
        inner = _nested_elements(value, spec, depth + 1)
        out[key] = inner if inner else json.loads(_typed_value(value, None))
        pos = v + len(close)
        while pos < len(text) and text[pos] in " \t\r\n":
            pos += 1
    return out


def _typed_quoted_args(args: str, schema: dict[str, Any]) -> str:
    data = json.loads(args)
    if not isinstance(data, dict):
        return args
    typed = schema_typed_args(data, schema)
    return json.dumps(typed, ensure_ascii=False) if typed != data else args


def schema_typed_args(args: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    """String values of parameters the schema types otherwise, as those types.

    A template that quotes every value (vLLM's FunctionGemma and Llama 4
    pythonic examples) teaches a model to write `n:<escape>12<escape>` or
    `seats="12"`; the client asked for an integer."""
    out = dict(args)
    for key, value in args.items():
        if isinstance(value, str) and param_is_string(schema, key) is False:
            typed = json.loads(_typed_value(value, False))
            if not isinstance(typed, str):
                out[key] = typed
    return out


def _typed_value(raw: str, is_string: bool | None) -> str:
    """A tagged argument's raw text as a JSON value, typed by the schema."""
    text = raw.strip()
    if is_string is not True:
        try:
            return json.dumps(json.loads(text), ensure_ascii=False)
        except ValueError:
            pass
        if text[:1] in ("{", "[") and text[-1:] in ("}", "]"):
            try:  # a dict/list the template printed as Python repr (Seed-OSS, MiniCPM5)
                return json.dumps(python_literal(text), ensure_ascii=False)
            except ValueError:
                pass
        low = text.lower()
        if low in ("true", "false"):
            return low
        if low in ("none", "null"):
            return "null"
    return json.dumps(raw, ensure_ascii=False)
