"""GigaChat 3.5 "GCML" — DeepSeek's DSML with its own token:
``<｜GCML｜tool_calls>\\n<｜GCML｜invoke name="NAME">\\n<｜GCML｜parameter name="K" string="true|false">V</｜GCML｜parameter>\\n</｜GCML｜invoke>\\n</｜GCML｜tool_calls>``."""

from __future__ import annotations

from dataclasses import replace

from localtools.dialects import deepseek_v32
from localtools.dialects.registry import register
from localtools.dialects.specdialect import Markers

SPEC = replace(
    deepseek_v32.SPEC,
    name="gigachat-3.5",
    section_start="<｜GCML｜tool_calls>\n",
    section_end="\n</｜GCML｜tool_calls>",
    alt_sections=(),
    name_prefix='<｜GCML｜invoke name="',
    arg_name_prefix='<｜GCML｜parameter name="',
    arg_value_suffix="</｜GCML｜parameter>\n",
    call_end="</｜GCML｜invoke>",
    reasoning=None,
)


class GcmlDialect(deepseek_v32.DsmlDialect):
    def for_template(self, template: str) -> GcmlDialect:
        return self


DIALECT = register(GcmlDialect(SPEC, Markers(all_of=("GCML",)), "GigaChat 3.5 GCML: <｜GCML｜invoke name=…><｜GCML｜parameter …>"))
DIALECT.priority = 370  # detection order: higher is tried first (see registry)
