"""Llama 3.1 / 3.2 / 3.3: a call is the whole reply, bare JSON.

``{"name": NAME, "parameters": {…}}`` at the start of the reply (several may be
joined by ``;``), or after ``<|python_tag|>``; raw code after ``<|python_tag|>``
goes to the python/code_interpreter tool.
"""

from __future__ import annotations

from typing import Any

from localtools.dialects.registry import register
from localtools.dialects.spec import DialectSpec
from localtools.dialects.specdialect import Markers, SpecDialect

SPEC = DialectSpec(
    name="llama3",
    shape="json",
    bare_json=True,
    name_key="name",
    args_keys=("parameters", "arguments"),
    call_sep="; ",
    python_tag="<|python_tag|>",
)

# Tools Llama 3.1 was trained to call as `<|python_tag|>NAME.call(...)`; Meta's template
# lists them after "Environment: ipython" when given `builtin_tools`.
BUILTIN_TOOLS = ("brave_search", "wolfram_alpha")


class Llama3(SpecDialect):
    """Llama 3.x headers (or Llama 4's, whose JSON tool format is the same)."""

    def render_kwargs(self, tools: list[dict[str, Any]]) -> dict[str, Any]:
        """`builtin_tools` for offered tools named like Meta's built-ins, so the model
        sees them the way it was trained to (they stay in `tools` as well)."""
        names = {(t.get("function") or {}).get("name") for t in tools}
        builtin = [n for n in BUILTIN_TOOLS if n in names]
        return {"builtin_tools": builtin} if builtin else {}

    def detect(self, template: str) -> list[str] | None:
        headers = [h for h in ("<|start_header_id|>", "<|header_start|>") if h in template]
        if not headers:
            return None
        return super().detect(template.replace("<|header_start|>", "<|start_header_id|>"))


DIALECT = register(
    Llama3(
        SPEC,
        Markers(all_of=("<|start_header_id|>",), any_of=("<|python_tag|>", "ipython", "\"parameters\"", "function name")),
        "Llama 3.x: bare JSON {name, parameters}; <|python_tag|>",
    )
)
DIALECT.priority = 30  # detection order: higher is tried first (see registry)
