"""Reading a call written as one JSON object, `{"name": …, "arguments": {…}}`.

It is the whole call in the json shape, and every other shape can meet one
too (an array after a section start, `<|python_tag|>{…}`, a bare object), so
every shape's parser derives from `JsonObjectReader`. The object streams
through one resumable `JsonScanner`; its top-level member callbacks find the
name (the call is announced as soon as it is read) and slice the arguments
out as they grow.
"""

from __future__ import annotations

import json

from localtools.dialects.jsonscan import AWAITS_KEY, DONE, DONE_BEFORE, ERROR, MORE, JsonScanner
from localtools.dialects.parsing.core import ParserCore


class JsonObjectReader(ParserCore):
    """The JSON-object call states, and the repair of a cut one."""

    def _open_json_in_section(self, p: int, array: bool) -> bool:
        """A section's first call written as JSON at `p`: a `[` list of them (when
        `array`) or one `{` object. False when neither is there."""
        ch = self.buf[p]
        if ch == "[" and array:
            self.section_array = True
            self.pos = p + 1
            self.state = self._st_section
            return True
        if ch == "{":
            self.pos = p
            self.state = self._st_json_object
            return True
        return False

    def _begin_bare_calls(self, p: int) -> None:
        if self.spec.array:
            # a bare JSON array of calls (xLAM)
            self.in_section = True
            self.section_array = True
            self.section_calls = 0
            self.section_end = ""
            self.pos = p + 1
            self.state = self._st_section
        else:
            self.state = self._st_json_object

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
        while True:
            # returns at each top-level member, so the call is announced right after its name
            r, self.pos = sc.scan(buf, self.pos)
            if r == ERROR or r == DONE_BEFORE:
                return self._json_object_failed(self.pos)
            if self.name is not None and not self.committed and not self._commit():
                return self._rollback()
            if r == DONE:
                return self._json_object_done()
            if r == MORE:
                break
        if self.committed:
            self._stream_json_args()
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
        if sc is None or sc.state != AWAITS_KEY:
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
            self._args(decode_string_args(self.buf[self.args_start : self.args_end]))
        else:
            self._stream_json_args()
        self._end_call()
        self.state = self._st_after_json_call
        return True

    def _st_after_json_call(self) -> bool:
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

    def _close_args_for_repair(self) -> None:
        sc = self.scanner
        if self.args_emitted < 0:
            self._args("{}")
            return
        if sc is None:
            return
        if self.scanning_call_object:
            if self.args_end >= 0:
                return
            if self.args_is_string:  # "arguments": "{\"city..." is sent only when whole
                self._args(repaired_string_args(self.buf[self.args_start : self.pos]))
                return
            suffix = sc.closing_suffix()  # closes the call object too: drop its '}'
            self._args(suffix[:-1] if suffix.endswith("}") else suffix)
        elif not sc.finished:  # arguments scanned on their own (after a tag header)
            self._args(sc.closing_suffix())


def decode_string_args(raw: str) -> str:
    """Arguments given as a JSON string holding JSON: decode once."""
    try:
        inner = json.loads(raw)
        value = json.loads(inner) if isinstance(inner, str) else inner
    except ValueError:
        return "{}"
    if not isinstance(value, dict):
        return "{}"
    return json.dumps(value, ensure_ascii=False)


def repaired_string_args(raw: str) -> str:
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
    result, end = sc.scan(inner, 0)
    if result == ERROR or result == DONE_BEFORE or end < len(inner):  # broken, or text after the object
        return "{}"
    text = inner + ("" if sc.finished else sc.closing_suffix())
    try:
        return text if isinstance(json.loads(text), dict) else "{}"
    except ValueError:
        return "{}"
