"""MiniCPM3: Python calls, one a line, in a fenced block:
``<|tool_call_start|>\\n```python\\nf(a=1)\\n```\\n<|tool_call_end|>``;
reasoning in ``<|thought_start|>…<|thought_end|>``."""

from __future__ import annotations

from typing import Any

from localtools.dialects.formatted import FormattedSpecDialect
from localtools.dialects.pycall import format_python_call
from localtools.dialects.registry import register
from localtools.dialects.spec import DialectSpec, ReasoningSpec
from localtools.dialects.specdialect import Markers, call_arguments, call_name

SPEC = DialectSpec(
    name="minicpm3",
    shape="python",
    section_start="<|tool_call_start|>\n```python\n",
    section_end="\n```\n<|tool_call_end|>",
    call_sep="\n",
    reasoning=ReasoningSpec("<|thought_start|>", "<|thought_end|>"),
)


class MiniCPM3Dialect(FormattedSpecDialect):
    def render_call(self, call: dict[str, Any], index: int) -> str:
        return format_python_call(call_name(call), call_arguments(call))


DIALECT = register(
    MiniCPM3Dialect(SPEC, Markers(all_of=("<|tool_call_start|>", "```python")), "MiniCPM3: ```python calls``` in <|tool_call_start|>")
)
DIALECT.priority = 140  # detection order: higher is tried first (see registry)
