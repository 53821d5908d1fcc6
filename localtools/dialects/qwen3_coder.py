"""Qwen3-Coder XML (also Qwen3.5, Nemotron 3 Nano, Step 3.5):
``<tool_call>\\n<function=NAME>\\n<parameter=K>\\nV\\n</parameter>\\n</function>\\n</tool_call>``.

String values are raw text; other values are JSON, typed by the tool schema.
"""

from __future__ import annotations

from localtools.dialects.registry import register
from localtools.dialects.spec import DialectSpec, ReasoningSpec
from localtools.dialects.specdialect import Markers, SpecDialect

SPEC = DialectSpec(
    name="qwen3-coder",
    shape="tagged",
    call_start="<tool_call>\n",
    name_prefix="<function=",
    name_suffix=">\n",
    arg_name_prefix="<parameter=",
    arg_name_suffix=">\n",
    arg_value_suffix="\n</parameter>\n",
    call_end="</function>\n</tool_call>",
    call_sep="\n",
    reasoning=ReasoningSpec("<think>", "</think>"),
)

DIALECT = register(
    SpecDialect(
        SPEC,
        Markers(all_of=("<function=", "<parameter=")),
        "Qwen3-Coder XML: <function=NAME><parameter=K>V</parameter>",
    )
)
DIALECT.priority = 300  # detection order: higher is tried first (see registry)
