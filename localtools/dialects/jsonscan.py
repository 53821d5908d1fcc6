"""An incremental JSON validator: one value, fed a character at a time.

Tool-call parsers need to know, while text streams in, whether the model is
still writing a well-formed JSON value, where it ends, and which keys sit at
the top level — without re-parsing the text on every token. This pushdown
scanner does exactly that and nothing more (it does not build values).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable

# push() results
MORE = 0  # consumed, value not finished
DONE = 1  # consumed, this character finished the value
DONE_BEFORE = 2  # the value had already finished; this character is NOT consumed
ERROR = 3  # this character cannot continue a valid value; NOT consumed
MEMBER = 4  # consumed; a member value of the outermost object began or ended (a callback was told)

# told (top-level key or None, position) when a member value of the outermost object begins or ends
TopValueCallback = Callable[[str | None, int], None]
_WS = " \t\n\r"
_NUMBER_CHARS = frozenset("0123456789+-.eE")
_NUMBER_RE = re.compile(r"-?(0|[1-9]\d*)(\.\d+)?([eE][+-]?\d+)?\Z")
_ESCAPES = frozenset('"\\/bfnrt')
_HEX = frozenset("0123456789abcdefABCDEF")
_LITERALS = {"t": "true", "f": "false", "n": "null"}
_PLAIN_RUN = re.compile(r'[^"\\\x00-\x1f]+')  # string characters needing no state change

# states
_VALUE = 0
_OBJ_KEY_OR_END = 1
_OBJ_KEY = 2
_COLON = 3
_AFTER = 4
_ARR_VALUE_OR_END = 5
_STRING = 6
_ESC = 7
_UNICODE = 8
_NUMBER = 9
_LITERAL = 10
_FINISHED = 11
AWAITS_KEY = _OBJ_KEY  # `state` after a comma inside an object: a key must follow


class JsonScanner:
    """Validates a single JSON value incrementally.

    Also records, for the outermost object, where each top-level key and
    value starts and ends (`top_keys`, offsets counted in characters pushed),
    so callers can slice out e.g. the `arguments` value as it streams.
    """

    __slots__ = (
        "stack",
        "state",
        "pos",
        "_string_is_key",
        "_hex_left",
        "_literal",
        "_number",
        "_key_chars",
        "current_key",
        "value_start",
        "on_top_value_start",
        "on_top_value_end",
    )

    def __init__(self) -> None:
        self.stack: list[str] = []  # "{" or "["
        self.state = _VALUE
        self.pos = 0
        self._string_is_key = False
        self._hex_left = 0
        self._literal = ""
        self._number: list[str] = []
        self._key_chars: list[str] = []
        self.current_key: str | None = None  # last top-level key read
        self.value_start = -1
        self.on_top_value_start: TopValueCallback | None = None  # callback(key, pos)
        self.on_top_value_end: TopValueCallback | None = None  # callback(key, end_pos)

    # -- public ---------------------------------------------------------------
    @property
    def finished(self) -> bool:
        return self.state == _FINISHED

    def push(self, ch: str) -> int:
        result = self._step(ch)
        if result != ERROR and result != DONE_BEFORE:
            self.pos += 1
        return result

    def scan(self, text: str, p: int) -> tuple[int, int]:
        """Push text[p:] until the value ends or breaks, or a member value of the
        outermost object begins or ends while callbacks are set (so the caller can
        act on it, e.g. announce a call once its name is read).

        Returns (result, index): (MORE, len(text)) when the text ran out; (DONE or
        MEMBER, index after the character); (ERROR or DONE_BEFORE, index of the
        character not consumed). Runs of plain string characters are skipped at
        once: the one loop every JSON reader shares, kept tight because it is the
        per-token cost of streamed arguments.
        """
        n = len(text)
        step = self._step
        while p < n:
            if self.state == _STRING:
                q = self.skip_plain(text, p)
                if q != p:
                    p = q
                    continue
            r = step(text[p])  # push(), inlined
            if r == MORE:
                self.pos += 1
                p += 1
            elif r == DONE or r == MEMBER:
                self.pos += 1
                return r, p + 1
            else:
                return r, p
        return MORE, n

    def skip_plain(self, text: str, p: int) -> int:
        """Consume at once the run of ordinary characters at text[p:] inside a string value.

        Returns the index after the run (p when there is none, or when the string is a
        top-level key, whose characters are recorded one by one). Arguments are mostly
        long strings: this keeps the per-character Python loop out of them.
        """
        if self.state != _STRING or (self._string_is_key and len(self.stack) == 1):
            return p
        m = _PLAIN_RUN.match(text, p)
        if m is None:
            return p
        end = m.end()
        self.pos += end - p
        return end

    def end(self) -> bool:
        """Signal end of input; True when the value is complete."""
        if self.state == _FINISHED:
            return True
        if self.state == _NUMBER and not self.stack:
            if _NUMBER_RE.match("".join(self._number)):
                self.state = _FINISHED
                return True
        return False

    # -- machine ----------------------------------------------------------------
    def _top_value_begins(self) -> int:
        """MEMBER when a member value of the outermost object begins (callback told), else MORE."""
        if len(self.stack) == 1 and self.stack[0] == "{" and self.on_top_value_start:
            self.on_top_value_start(self.current_key, self.pos)
            return MEMBER
        return MORE

    def _value_done(self) -> int:
        """A value just completed (its last char consumed)."""
        if not self.stack:
            self.state = _FINISHED
            return DONE
        self.state = _AFTER
        if len(self.stack) == 1 and self.stack[0] == "{" and self.on_top_value_end:
            self.on_top_value_end(self.current_key, self.pos + 1)
            return MEMBER
        return MORE

    def _begin_value(self, ch: str) -> int:
        if ch == "{":
            r = self._top_value_begins()
            self.stack.append("{")
            self.state = _OBJ_KEY_OR_END
            return r
        if ch == "[":
            r = self._top_value_begins()
            self.stack.append("[")
            self.state = _ARR_VALUE_OR_END
            return r
        if ch == '"':
            r = self._top_value_begins()
            self._string_is_key = False
            self.state = _STRING
            return r
        if ch == "-" or ch.isdigit():
            r = self._top_value_begins()
            self._number = [ch]
            self.state = _NUMBER
            return r
        lit = _LITERALS.get(ch)
        if lit:
            r = self._top_value_begins()
            self._literal = lit[1:]
            self.state = _LITERAL
            return r
        return ERROR

    def _step(self, ch: str) -> int:
        """One character. Inside strings (the bulk of arguments) it is handled
        here; everything else goes to the number, literal or structure step."""
        st = self.state
        if st == _STRING:
            if ch == '"':
                if self._string_is_key:
                    if len(self.stack) == 1:
                        self.current_key = "".join(self._key_chars)
                    self.state = _COLON
                    return MORE
                # string value ends (consume the quote)
                return self._value_done()
            if ch == "\\":
                self.state = _ESC
                return MORE
            if ch < " ":
                return ERROR
            if self._string_is_key and len(self.stack) == 1:
                self._key_chars.append(ch)
            return MORE
        if st == _ESC:
            if ch in _ESCAPES:
                if self._string_is_key and len(self.stack) == 1:
                    self._key_chars.append({"n": "\n", "t": "\t", "r": "\r", "b": "\b", "f": "\f"}.get(ch, ch))
                self.state = _STRING
                return MORE
            if ch == "u":
                self._hex_left = 4
                self.state = _UNICODE
                return MORE
            return ERROR
        if st == _UNICODE:
            if ch not in _HEX:
                return ERROR
            self._hex_left -= 1
            if self._hex_left == 0:
                self.state = _STRING
            return MORE
        if st == _NUMBER:
            return self._step_number(ch)
        if st == _LITERAL:
            if self._literal and ch == self._literal[0]:
                self._literal = self._literal[1:]
                if not self._literal:
                    return self._value_done()
                return MORE
            return ERROR
        return self._step_structure(ch, st)

    def _step_number(self, ch: str) -> int:
        if ch in _NUMBER_CHARS:
            self._number.append(ch)
            return MORE
        if not _NUMBER_RE.match("".join(self._number)):
            return ERROR
        # number ended before this char
        if not self.stack:
            self.state = _FINISHED
            return DONE_BEFORE
        self.state = _AFTER
        if len(self.stack) == 1 and self.stack[0] == "{" and self.on_top_value_end:
            self.on_top_value_end(self.current_key, self.pos)
            r = self._step(ch)
            return MEMBER if r == MORE else r
        return self._step(ch)

    def _step_structure(self, ch: str, st: int) -> int:
        """Outside strings, numbers and literals: whitespace, brackets, ':' and ','."""
        if st == _VALUE:
            if ch in _WS:
                return MORE
            return self._begin_value(ch)
        if st == _OBJ_KEY_OR_END:
            if ch in _WS:
                return MORE
            if ch == "}":
                self.stack.pop()
                return self._value_done()
            if ch == '"':
                return self._start_key()
            return ERROR
        if st == _OBJ_KEY:
            if ch in _WS:
                return MORE
            if ch == '"':
                return self._start_key()
            return ERROR
        if st == _COLON:
            if ch in _WS:
                return MORE
            if ch == ":":
                self.state = _VALUE
                return MORE
            return ERROR
        if st == _ARR_VALUE_OR_END:
            if ch in _WS:
                return MORE
            if ch == "]":
                self.stack.pop()
                return self._value_done()
            return self._begin_value(ch)
        if st == _AFTER:
            if ch in _WS:
                return MORE
            top = self.stack[-1]
            if ch == ",":
                self.state = _OBJ_KEY if top == "{" else _VALUE
                return MORE
            if (ch == "}" and top == "{") or (ch == "]" and top == "["):
                self.stack.pop()
                return self._value_done()
            return ERROR
        if st == _FINISHED:
            return DONE_BEFORE
        return ERROR

    def _start_key(self) -> int:
        self._string_is_key = True
        self._key_chars = []
        self.state = _STRING
        return MORE

    def closing_suffix(self) -> str:
        """Text that would close the value as it stands (for repairing a cut call)."""
        out = []
        st = self.state
        if st in (_STRING, _ESC, _UNICODE):
            if st == _UNICODE:
                out.append("0" * self._hex_left)
            elif st == _ESC:
                out.append("\\")
            out.append('"')
            if self._string_is_key:
                out.append(": null")
        elif st == _COLON:
            out.append(": null")
        elif st == _VALUE and self.stack and self.stack[-1] == "{":
            out.append("null")
        elif st == _LITERAL:
            out.append(self._literal)
        elif st == _NUMBER and not _NUMBER_RE.match("".join(self._number)):
            out.append("0")
        elif st == _VALUE and self.stack and self.stack[-1] == "[":
            # after a comma in an array: drop nothing, add a null element
            out.append("null")
        elif st == _VALUE and not self.stack:
            out.append("{}")
        for opener in reversed(self.stack):
            out.append("}" if opener == "{" else "]")
        return "".join(out)


# --------------------------------------------------------------------------
# Relaxed objects: bare keys and strings in a custom quote token (Gemma 4
# writes {city:<|"|>London<|"|>,days:3}). Held whole, then converted.
# --------------------------------------------------------------------------

_STRUCT = "{}[],:"
_DECODER = json.JSONDecoder()


def quoted_object_end(text: str, start: int, quote: str) -> int:
    """Index just past the `}` closing the `{` at `start`, or -1 if not yet
    (brackets inside `quote`-delimited or JSON strings do not count)."""
    depth = 0
    i, n = start, len(text)
    while i < n:
        if text.startswith(quote, i):
            j = text.find(quote, i + len(quote))
            if j < 0:
                return -1
            i = j + len(quote)
            continue
        ch = text[i]
        if ch == '"':
            j = i + 1
            while j < n and text[j] != '"':
                j += 2 if text[j] == "\\" else 1
            if j >= n:
                return -1
            i = j + 1
            continue
        if ch in "{[":
            depth += 1
        elif ch in "}]":
            depth -= 1
            if depth == 0:
                return i + 1
        i += 1
    return -1


_JSON_STRING_RUN = re.compile(r'[^"\\]+')


class QuotedObjectScan:
    """`quoted_object_end` for streamed text: each call resumes where the last one stopped,
    so a long value costs O(new text) per token instead of a rescan from the start."""

    __slots__ = ("start", "quote", "i", "depth", "mode")

    def __init__(self, start: int, quote: str) -> None:
        self.start = start
        self.quote = quote
        self.i = start
        self.depth = 0
        self.mode = 0  # 0: structure, 1: inside a `quote` string, 2: inside a JSON string

    def end(self, text: str) -> int:
        """Index just past the closing `}` in `text` (which only grows), or -1 if not yet."""
        q, lq, n = self.quote, len(self.quote), len(text)
        i, depth, mode = self.i, self.depth, self.mode
        while True:
            if mode == 1:
                j = text.find(q, i)
                if j < 0:
                    i = max(i, n - lq + 1)  # a closing quote may straddle the next piece
                    break
                i, mode = j + lq, 0
                continue
            if mode == 2:
                while i < n:
                    m = _JSON_STRING_RUN.match(text, i)
                    if m is not None:
                        i = m.end()
                        continue
                    if text[i] == "\\":
                        i += 2
                        continue
                    break  # the closing '"'
                if i >= n:
                    break
                i, mode = i + 1, 0
                continue
            if i >= n:
                break
            if text.startswith(q, i):
                i, mode = i + lq, 1
                continue
            if n - i < lq and q.startswith(text[i:]):
                break  # maybe the start of a quote: wait for more text
            ch = text[i]
            if ch == '"':
                i, mode = i + 1, 2
                continue
            if ch in "{[":
                depth += 1
            elif ch in "}]":
                depth -= 1
                if depth == 0:
                    self.i, self.depth, self.mode = i + 1, 0, 0
                    return i + 1
            i += 1
        self.i, self.depth, self.mode = i, depth, mode
        return -1


def quoted_object_to_json(text: str, quote: str) -> str | None:
    """`{k:<|"|>v<|"|>,n:1}` as JSON text, or None when it is not that syntax.
    Plain JSON strings and keys are accepted too."""
    out: list[str] = []
    i, n = 0, len(text)
    while i < n:
        ch = text[i]
        if text.startswith(quote, i):
            j = text.find(quote, i + len(quote))
            if j < 0:
                return None
            out.append(json.dumps(text[i + len(quote) : j], ensure_ascii=False))
            i = j + len(quote)
        elif ch == '"':
            try:
                value, end = _DECODER.raw_decode(text, i)
            except ValueError:
                return None
            out.append(json.dumps(value, ensure_ascii=False))
            i = end
        elif ch in _STRUCT:
            out.append(ch)
            i += 1
        elif ch in _WS:
            i += 1
        else:
            j = i
            while j < n and text[j] not in _STRUCT and text[j] not in _WS and not text.startswith(quote, j):
                j += 1
            word = text[i:j]
            k = j
            while k < n and text[k] in _WS:
                k += 1
            if k < n and text[k] == ":":
                out.append(json.dumps(word, ensure_ascii=False))  # a bare key
            elif word in ("true", "false", "null") or _NUMBER_RE.match(word):
                out.append(word)
            else:
                return None
            i = j
    result = "".join(out)
    try:
        value = json.loads(result)
    except ValueError:
        return None
    return json.dumps(value, ensure_ascii=False) if isinstance(value, dict) else None


def to_quoted_object(value: object, quote: str) -> str:
    """The inverse: a JSON value written with bare keys and `quote` strings."""
    if isinstance(value, dict):
        return "{" + ",".join(f"{k}:{to_quoted_object(v, quote)}" for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ",".join(to_quoted_object(v, quote) for v in value) + "]"
    if isinstance(value, str):
        return f"{quote}{value}{quote}"
    return json.dumps(value)
