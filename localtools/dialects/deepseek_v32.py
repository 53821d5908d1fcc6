"""DeepSeek V3.2 / V4 "DSML":
``<｜DSML｜function_calls>\\n<｜DSML｜invoke name="NAME">\\n<｜DSML｜parameter name="K" string="true|false">V</｜DSML｜parameter>\\n</｜DSML｜invoke>\\n</｜DSML｜function_calls>``.

V4 names the block ``tool_calls``; both parse. ``string="true"`` marks a raw
string, ``"false"`` a JSON value — the model says which, not the schema.
"""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

from localtools.dialects.formatted import FormattedSpecDialect
from localtools.dialects.registry import register
from localtools.dialects.spec import DialectSpec, ReasoningSpec
from localtools.dialects.specdialect import Markers, call_arguments, call_name

_V32 = ("<｜DSML｜function_calls>", "</｜DSML｜function_calls>")
_V4 = ("<｜DSML｜tool_calls>", "</｜DSML｜tool_calls>")

SPEC = DialectSpec(
    name="deepseek-v3.2",
    shape="tagged",
    section_start=_V32[0] + "\n",
    section_end="\n" + _V32[1],
    alt_sections=(_V4,),
    name_prefix='<｜DSML｜invoke name="',
    name_suffix='">\n',
    arg_name_prefix='<｜DSML｜parameter name="',
    arg_flag_sep='" string="',
    arg_name_suffix='">',
    arg_value_suffix="</｜DSML｜parameter>\n",
    call_end="</｜DSML｜invoke>",
    call_sep="\n",
    reasoning=ReasoningSpec("<think>", "</think>"),
)
V4_SPEC = replace(SPEC, section_start=_V4[0] + "\n", section_end="\n" + _V4[1], alt_sections=(_V32,))


class DsmlDialect(FormattedSpecDialect):
    def render_call(self, call: dict[str, Any], index: int) -> str:
        """Each parameter says whether its value is a raw string (string="true")."""
        s = self.spec
        params = []
        for key, value in call_arguments(call).items():
            is_str = isinstance(value, str)
            text = value if is_str else json.dumps(value, ensure_ascii=False)
            flag = "true" if is_str else "false"
            params.append(f"{s.arg_name_prefix}{key}{s.arg_flag_sep}{flag}{s.arg_name_suffix}{text}{s.arg_value_suffix}")
        return f"{s.name_prefix}{call_name(call)}{s.name_suffix}{''.join(params)}{s.call_end}"

    def for_template(self, template: str) -> DsmlDialect:
        if _V4[0] in template or "tool_calls>" in template and "function_calls>" not in template:
            return DsmlDialect(V4_SPEC, self.markers, self.summary)
        return self


DIALECT = register(
    DsmlDialect(SPEC, Markers(all_of=("DSML",)), "DeepSeek V3.2/V4 DSML: <｜DSML｜invoke name=…><｜DSML｜parameter …>")
)
DIALECT.priority = 380  # detection order: higher is tried first (see registry)
