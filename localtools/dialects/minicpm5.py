"""MiniCPM5: ``<function name="NAME"><param name="K">V</param></function>``, reasoning in ``<think>``."""

from __future__ import annotations

from localtools.dialects.registry import register
from localtools.dialects.spec import DialectSpec, ReasoningSpec
from localtools.dialects.specdialect import Markers, SpecDialect

SPEC = DialectSpec(
    name="minicpm5",
    shape="tagged",
    name_prefix='<function name="',
    name_suffix='">',
    arg_name_prefix='<param name="',
    arg_name_suffix='">',
    arg_value_suffix="</param>",
    call_end="</function>",
    call_sep="\n",
    reasoning=ReasoningSpec("<think>", "</think>"),
)

DIALECT = register(
    SpecDialect(SPEC, Markers(all_of=('<function name="', '<param name="')), 'MiniCPM5: <function name="NAME"><param name="K">V</param>')
)
DIALECT.priority = 290  # detection order: higher is tried first (see registry)
