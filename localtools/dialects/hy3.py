"""Tencent Hy3: GLM-style tagged arguments with ``:opensource`` tags,
``<tool_calls:opensource>\\n<tool_call:opensource>NAME<tool_sep:opensource>\\n<arg_key:opensource>K</arg_key:opensource>\\n<arg_value:opensource>V</arg_value:opensource>\\n</tool_call:opensource>\\n</tool_calls:opensource>``."""

from __future__ import annotations

from localtools.dialects.registry import register
from localtools.dialects.spec import DialectSpec, ReasoningSpec
from localtools.dialects.specdialect import Markers, SpecDialect

SPEC = DialectSpec(
    name="hy3",
    shape="tagged",
    section_start="<tool_calls:opensource>\n",
    section_end="\n</tool_calls:opensource>",
    call_start="<tool_call:opensource>",
    name_suffix="<tool_sep:opensource>\n",
    arg_name_prefix="<arg_key:opensource>",
    arg_name_suffix="</arg_key:opensource>\n",
    arg_value_prefix="<arg_value:opensource>",
    arg_value_suffix="</arg_value:opensource>\n",
    call_end="</tool_call:opensource>",
    call_sep="\n",
    reasoning=ReasoningSpec("<think:opensource>", "</think:opensource>"),
)

DIALECT = register(SpecDialect(SPEC, Markers(all_of=("<tool_calls{}>", ":opensource")), "Hy3: <tool_call:opensource>NAME<tool_sep:opensource><arg_key:…>"))
DIALECT.priority = 350  # detection order: higher is tried first (see registry)
