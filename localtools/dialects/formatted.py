"""A SpecDialect whose history text the generic renderer cannot write.

Why: `specdialect.render_calls` knows the three original shapes; a family
whose calls carry an index (Kimi), a per-argument flag (DSML), Python call
syntax or harmony headers writes its own text here, and the tool prompt's
example follows it, so the model is shown exactly what it was trained on.
"""

from __future__ import annotations

from typing import Any

from localtools.dialects.specdialect import SpecDialect, default_tool_prompt, render_calls


class FormattedSpecDialect(SpecDialect):
    """Subclasses write one call (`render_call`); sections and the prompt follow."""

    def render_call(self, call: dict[str, Any], index: int) -> str:
        raise NotImplementedError

    def format_calls(self, calls: list[dict[str, Any]]) -> str:
        body = self.spec.call_sep.join(self.render_call(c, i) for i, c in enumerate(calls))
        return f"{self.spec.section_start}{body}{self.spec.section_end}"

    def tool_system_prompt(self, tools: list[dict[str, Any]]) -> str | None:
        text = default_tool_prompt(self.spec, tools)
        name = (tools[0].get("function", tools[0]).get("name") if tools else "function_name") or "function_name"
        example = [{"function": {"name": name, "arguments": {"argument": "value"}}}]
        return text.replace(render_calls(self.spec, example), self.format_calls(example), 1)
