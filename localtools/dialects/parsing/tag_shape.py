"""The tag_json call shape: markers carry the name, the arguments are JSON —
`<function=NAME>{…}</function>`, Functionary `>>>NAME\\n{…}`, Gemma 4's
relaxed `{city:<|"|>London<|"|>}`.

`TagParser` reads the call header (optional id, name prefix, name, name
suffix, id, args start) and the arguments object; the tagged shape and the
python shape reuse its header and override what comes after it.
"""

from __future__ import annotations

import json
from typing import Any

from localtools.dialects.jsonscan import DONE, DONE_BEFORE, ERROR, JsonScanner, QuotedObjectScan, quoted_object_to_json
from localtools.dialects.parsing.core import ID_CHARS, MATCH, MAX_NAME, NAME_CHARS, NOMATCH, PARTIAL, tokens
from localtools.dialects.parsing.python_tag import CODE_TOOLS, PythonTagReader
from localtools.dialects.parsing.schema import schema_typed_args


class TagParser(PythonTagReader):
    """Streaming parser for `DialectSpec(shape="tag_json")`, and the header of the tag shapes."""

    # ---- hooks into the core -----------------------------------------------------
    def _lenient_triggers(self) -> list[str]:
        s = self.spec
        if s.name_prefix.strip() and s.call_start.strip() and not s.section_start.strip():
            # lenient: models sometimes skip the outer opener (Qwen3-Coder)
            return [tokens(s.name_prefix)[0]]
        return []

    def _open_from_prompt(self, prompt_tail: str) -> None:
        s = self.spec
        opener = (s.call_start + s.name_prefix).strip()
        tail = prompt_tail.rstrip()
        if opener and not s.section_start and tail.endswith(opener):
            # the generation prompt already opened a call header (Functionary
            # v3.2 ends in ">>>", v2 in "<|recipient|>"): start at the name
            self._begin_call(0, 0)
            self.state = self._st_name_after_prefix
        elif s.call_start.strip() and s.name_prefix.strip() and not s.section_start and tail.endswith(s.call_start.strip()):
            # the prompt wrote the call start, the output goes on with the name prefix
            # (Muse: "<|start|>assistant" then " to=NAME"); anything else rolls back to text
            self._begin_call(0, 0)
            self.state = self._st_call_head

    def _on_name_prefix_trigger(self, at: int) -> bool:
        ok, p = self._match_rest(self.spec.name_prefix, self.pos)
        if ok == PARTIAL:
            return self._wait_at(at)
        if ok == NOMATCH:
            return self._rollback()
        self.pos = p
        self.state = self._st_name_after_prefix
        return True

    def _section_first_call(self, p: int) -> bool:
        if self.spec.json_in_section and self._open_json_in_section(p, array=True):
            return True
        self.state = self._st_section
        return True

    def _section_call_without_start(self, p: int) -> bool | None:
        spec = self.spec
        ok, q = self._match_at(p, tokens(spec.name_prefix)) if spec.name_prefix.strip() else (MATCH, p)
        if ok == PARTIAL:
            return False
        if ok == MATCH and (spec.name_prefix.strip() or NAME_CHARS.match(self.buf, p).end() > p):  # type: ignore[union-attr]
            if self.section_calls:
                self._begin_call(p, q - p)
            self.pos = q
            self.state = self._st_name_after_prefix
            return True
        return None

    # ---- the header ----------------------------------------------------------------
    def _st_call_head(self) -> bool:
        spec = self.spec
        start = self.pos
        if spec.id_first:
            m = ID_CHARS.match(self.buf, start)
            start = m.end() if m else start
            if start >= len(self.buf) and not self.final:
                return False
            if start - self.pos > MAX_NAME:
                return self._rollback()
            self.call_id = self.buf[self.pos : start] or None
        if spec.name_prefix.strip():
            ok, p = self._match_at(start, tokens(spec.name_prefix))
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
        m = NAME_CHARS.match(buf, p)
        end = m.end() if m else p
        if end - p > MAX_NAME:
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
            ok, q = self._match_at(end, tokens(suffix))
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
            ok, p = self._match_at(self.pos, tokens(spec.id_prefix))
            if ok == PARTIAL:
                return False
            if ok == MATCH:
                m = ID_CHARS.match(self.buf, p)
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
            ok, p = self._match_at(self.pos, tokens(spec.args_start))
            if ok == PARTIAL:
                return False
            if ok == MATCH:
                self.pos = p
        if not self._commit():
            return self._rollback()
        self._begin_args()
        return True

    # ---- JSON arguments ------------------------------------------------------------
    def _begin_args(self) -> None:
        """The call is committed, its arguments come next."""
        self.state = self._st_args_json_begin

    def _st_args_json_begin(self) -> bool:
        p = self._skip_ws(self.pos)
        if p >= len(self.buf):
            if self.final:
                return self._break_call(p)
            return False
        if self.buf[p] != "{" and self.name in CODE_TOOLS and self.spec.name_prefix.strip():
            # Functionary: ">>>python\n<code>" — raw code up to the next call
            self.pos = p
            self._open_raw_code(stop=self.spec.name_prefix.strip())
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
        r, p = sc.scan(buf, self.pos)
        self.pos = p
        if r == ERROR or r == DONE_BEFORE:
            self._args(buf[self.args_emitted : self._before_dangling_comma(p)])
            self.args_emitted = max(self.args_emitted, p)
            return self._break_call(p)
        if r == DONE:
            self._args(buf[self.args_emitted : p])
            self.args_emitted = p
            self._end_call()
            self.state = self._st_args_close
            return True
        upto = self._before_dangling_comma(p)
        self._args(buf[self.args_emitted : upto])
        self.args_emitted = max(self.args_emitted, upto)
        return False

    def _st_args_close(self) -> bool:
        spec = self.spec
        if spec.args_end.strip():
            ok, p = self._match_at(self.pos, tokens(spec.args_end))
            if ok == PARTIAL:
                return False
            if ok == MATCH:
                self.pos = p
        self.state = self._st_after_call
        return True


def _typed_quoted_args(args: str, schema: dict[str, Any]) -> str:
    data = json.loads(args)
    if not isinstance(data, dict):
        return args
    typed = schema_typed_args(data, schema)
    return json.dumps(typed, ensure_ascii=False) if typed != data else args
