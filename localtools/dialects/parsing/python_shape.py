"""The python call shape: the calls are Python call syntax, `[f(a=1), g()]`
(LFM2, Llama 3.2/4 pythonic, ToolACE, Olmo 3), or one call a line up to the
section end.

A block is held until its bracket closes (or the section ends), then every
call in it is announced at once: a half-written Python call cannot be
streamed as final JSON. The header of `TagParser` still applies where the
spec names markers before a call.
"""

from __future__ import annotations

import json
import re

from localtools.dialects.parsing.schema import schema_typed_args
from localtools.dialects.parsing.tag_shape import TagParser
from localtools.dialects.pycall import parse_loose_python_calls, parse_python_calls


class PythonParser(TagParser):
    """Streaming parser for `DialectSpec(shape="python")`."""

    def _bare_call_opener(self) -> str:
        return "["

    def _begin_bare_calls(self, p: int) -> None:
        self.state = self._st_python_block

    def _st_section_open(self) -> bool:
        self.state = self._st_python_block
        return True

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
            if not isinstance(scan, BracketScan) or scan.start != p:
                scan = self.resume = BracketScan(p, "[", "]")
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
        return self._python_calls(body, after)

    def _python_calls(self, body: str, after: int) -> bool:
        """A whole block of calls, text up to `after`: all of them, or content."""
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


_PY_PLAIN = re.compile(r"[^\"'\\\[\]]+")


class BracketScan:
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
