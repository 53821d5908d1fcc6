"""GLM 4.5/4.6/4.7, Spark 2.5, Laguna, Ling 3.0 (Bailing V3):
``<tool_call>NAME\\n<arg_key>K</arg_key>\\n<arg_value>V</arg_value>\\n</tool_call>``.

GLM-4.7 writes the same without newlines. String values are raw text; other
values are JSON, typed by the tool schema. Reasoning in ``<think>``.
"""

from __future__ import annotations

from localtools.dialects.registry import register
from localtools.dialects.spec import DialectSpec, ReasoningSpec
from localtools.dialects.specdialect import Markers, SpecDialect

SPEC = DialectSpec(
    name="glm",
    shape="tagged",
    call_start="<tool_call>",
    name_suffix="\n",
    arg_name_prefix="<arg_key>",
    arg_name_suffix="</arg_key>\n",
    arg_value_prefix="<arg_value>",
    arg_value_suffix="</arg_value>\n",
    call_end="</tool_call>",
    call_sep="\n",
    reasoning=ReasoningSpec("<think>", "</think>"),
)

DIALECT = register(
    SpecDialect(SPEC, Markers(all_of=("<arg_key>", "<arg_value>")), "GLM: <tool_call>NAME<arg_key>K</arg_key><arg_value>V</arg_value>")
)
DIALECT.priority = 320  # detection order: higher is tried first (see registry)
