"""After a python tag (Llama 3.1 `<|python_tag|>`): a JSON call, a built-in
tool call `brave_search.call(query="…")`, or raw code for the python tool.

A dialect feature, not a call shape: any shape's spec may name a
`python_tag`, so every shape's parser derives from `PythonTagReader`.
Raw code is also what Functionary writes after `>>>python` (tag_shape).
"""

from __future__ import annotations

import json
import re

from localtools.dialects.parsing.core import json_escape
from localtools.dialects.parsing.json_object import JsonObjectReader
from localtools.dialects.parsing.schema import code_param
from localtools.dialects.pycall import balanced_end, parse_python_calls

CODE_TOOLS = ("python", "code_interpreter", "ipython")
_BUILTIN_CALL = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\.call\(")
_BUILTIN_PREFIX = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\.(c(a(l(l)?)?)?)?)?")


class PythonTagReader(JsonObjectReader):
    """What follows the python tag, and raw code for a python tool."""

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

        target = next((n for n in CODE_TOOLS if n in self.tools), None)
        if target is None:
            return self._rollback()
        self.name = target
        self.pos = p
        if not self._commit():
            return self._rollback()
        self._open_raw_code(stop="")
        return True

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

    def _open_raw_code(self, stop: str) -> None:
        """Code written raw for a python tool (the call is committed): becomes
        {"<param>": "<code>"}, streamed up to `stop` ("" = the end of output)."""
        self._args("{" + json.dumps(code_param(self.tools.get(self.name or "", {}))) + ': "')
        self.raw_stop = stop
        self.state = self._st_raw_code

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
            self._args(json_escape(buf[self.pos : upto]))
            self.pos = upto
        if end >= 0 or self.final:
            self._args('"}')
            self._end_call()
            self.state = self._st_text
            return True
        return False
