"""MiniMax-M2:
``<minimax:tool_call>\\n<invoke name="NAME">\\n<parameter name="K">V</parameter>\\n</invoke>\\n</minimax:tool_call>``.

String values are raw; others JSON, typed by the tool schema. The prompt
opens ``<think>``.
"""

from __future__ import annotations

from localtools.dialects.registry import register
from localtools.dialects.spec import DialectSpec, ReasoningSpec
from localtools.dialects.specdialect import Markers, SpecDialect

SPEC = DialectSpec(
    name="minimax",
    shape="tagged",
    section_start="<minimax:tool_call>\n",
    section_end="\n</minimax:tool_call>",
    name_prefix='<invoke name="',
    name_suffix='">\n',
    arg_name_prefix='<parameter name="',
    arg_name_suffix='">',
    arg_value_suffix="</parameter>\n",
    call_end="</invoke>",
    call_sep="\n",
    reasoning=ReasoningSpec("<think>", "</think>"),
)

DIALECT = register(
    SpecDialect(SPEC, Markers(all_of=("<minimax:tool_call>",)), "MiniMax-M2: <invoke name=…><parameter name=…> in <minimax:tool_call>")
)
DIALECT.priority = 340  # detection order: higher is tried first (see registry)
