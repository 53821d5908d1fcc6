"""The tagged call shape: each argument sits in its own markers —
Qwen3-Coder `<parameter=K>V</parameter>`, GLM `<arg_key>K</arg_key>
<arg_value>V</arg_value>`, MiniMax-M3 `<K>V</K>`.

The header is the tag shape's (`TagParser`); the arguments are rebuilt as a
JSON object while they stream: a string parameter (by the tool schema, or a
flag in the tag) streams as an escaped JSON string, any other value is typed
when its closing marker arrives.
"""

from __future__ import annotations

import json
from typing import Any

from localtools.dialects.parsing.core import MATCH, MAX_NAME, NOMATCH, PARTIAL, json_escape, tokens
from localtools.dialects.parsing.schema import param_is_string, typed_value
from localtools.dialects.parsing.tag_shape import TagParser
from localtools.dialects.spec import DialectSpec


class TaggedParser(TagParser):
    """Streaming parser for `DialectSpec(shape="tagged")`."""

    def _begin_args(self) -> None:
        self._args("{")
        self.n_args = 0
        self.state = self._st_tagged_args

    def _close_args_for_repair(self) -> None:
        if self.arg_value_start >= 0 and self.arg_is_string:
            self._args('"')
        elif self.arg_value_start >= 0:
            self._args("null")
        self._args("}")

    def _st_tagged_args(self) -> bool:
        spec = self.spec
        p = self.pos
        end_first = bool(spec.call_end.strip()) and spec.call_end.strip().startswith(spec.arg_name_prefix.strip())
        if end_first:
            # the call's end begins like an argument tag (MiniMax-M3 "…[</invoke>"): try it first
            ok, q = self._match_at(p, tokens(spec.call_end))
            if ok == PARTIAL:
                return False
            if ok == MATCH:
                return self._end_tagged_call(q)
        ok, q = self._match_at(p, tokens(spec.arg_name_prefix))
        if ok == PARTIAL:
            return False
        if ok == MATCH:
            self.pos = q
            self.state = self._st_arg_name
            return True
        ok, q = self._match_closing(p, tokens(spec.call_end)) if spec.call_end.strip() else (NOMATCH, p)
        if ok == PARTIAL:
            return False
        if ok == MATCH:
            return self._end_tagged_call(q)
        if self.final and self._skip_ws(p) >= len(self.buf):
            self._args("}")
            self._end_call()
            self.pos = len(self.buf)
            self.state = self._st_text
            return True
        return self._break_call(self._skip_ws(p))

    def _end_tagged_call(self, q: int) -> bool:
        """The call's end marker matched, ending at `q`."""
        self._args("}")
        self._end_call()
        self.pos = q
        self.state = self._st_section if self.in_section else self._st_text
        return True

    def _st_arg_name(self) -> bool:
        spec = self.spec
        suffix = tokens(spec.arg_name_suffix)
        buf = self.buf
        stop = suffix[0] if suffix else "\n"
        i = buf.find(stop, self.pos)
        if i < 0:
            if len(buf) - self.pos > MAX_NAME:
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
            ok, q2 = self._match_at(q, tokens(spec.arg_value_prefix))
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
                    hold = _value_holdback(buf, stop)
                    upto = len(buf) - hold
                    if upto > self.arg_emitted:
                        self._args(json_escape(buf[self.arg_emitted : upto]))
                        self.arg_emitted = upto
                return False
        value_end = i
        if value_end > self.arg_value_start and buf[value_end - 1] == "\n":
            value_end -= 1
        if self.arg_is_string:
            if value_end > self.arg_emitted:
                self._args(json_escape(buf[self.arg_emitted : value_end]))
            self._args('"')
        else:
            raw = buf[self.arg_value_start : value_end]
            nested = _nested_elements(raw, spec) if "{key}" in spec.arg_value_suffix else None
            self._args(json.dumps(nested, ensure_ascii=False) if nested else typed_value(raw, self.arg_is_string))
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
        return tokens(suffix)


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
        out[key] = inner if inner else json.loads(typed_value(value, None))
        pos = v + len(close)
        while pos < len(text) and text[pos] in " \t\r\n":
            pos += 1
    return out
