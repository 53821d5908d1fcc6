"""Seed-OSS: ``<seed:tool_call>\\n<function=NAME>\\n<parameter=K>V</parameter>\\n</function>\\n</seed:tool_call>``,
reasoning in ``<seed:think>``. String values raw, others JSON (typed by schema)."""

from __future__ import annotations

from localtools.dialects.registry import register
from localtools.dialects.spec import DialectSpec, ReasoningSpec
from localtools.dialects.specdialect import Markers, SpecDialect

SPEC = DialectSpec(
    name="seed-oss",
    shape="tagged",
    call_start="<seed:tool_call>\n",
    name_prefix="<function=",
    name_suffix=">\n",
    arg_name_prefix="<parameter=",
    arg_name_suffix=">",
    arg_value_suffix="</parameter>\n",
    call_end="</function>\n</seed:tool_call>",
    call_sep="\n",
    reasoning=ReasoningSpec("<seed:think>", "</seed:think>"),
)

DIALECT = register(SpecDialect(SPEC, Markers(all_of=("<seed:tool_call>",)), "Seed-OSS: <seed:tool_call><function=NAME><parameter=K>V"))
DIALECT.priority = 310  # detection order: higher is tried first (see registry)
