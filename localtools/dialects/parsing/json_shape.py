"""The json call shape: each call is a JSON object with a name key and an
arguments key — Hermes `<tool_call>{…}</tool_call>`, Mistral
`[TOOL_CALLS][{…}]`, Llama 3's bare `{"name", "parameters"}`.

Reading the object is `JsonObjectReader`'s (every shape can meet one); this
module only says where the objects are once a call or section opens.
"""

from __future__ import annotations

from localtools.dialects.parsing.python_tag import PythonTagReader


class JsonParser(PythonTagReader):
    """Streaming parser for `DialectSpec(shape="json")`."""

    def _section_first_call(self, p: int) -> bool:
        if self._open_json_in_section(p, array=self.spec.array or self.spec.json_in_section):
            return True
        return self._rollback()

    def _section_call_without_start(self, p: int) -> bool | None:
        if not self.spec.call_start.strip() and self.buf[p] == "{" and self.section_calls:
            # several bare objects in one section (MiniMax-M1: one per line)
            self._begin_call(p, 0)
            self.pos = p
            self.state = self._st_json_object
            return True
        return None

    def _st_call_head(self) -> bool:
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
