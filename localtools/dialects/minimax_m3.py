"""MiniMax-M3: every tag carries the ``]<]minimax[>[`` namespace and each
argument is its own element named after the key:
``]<]minimax[>[<tool_call>\\n]<]minimax[>[<invoke name="NAME">]<]minimax[>[<K>V]<]minimax[>[</K>…]<]minimax[>[</invoke>\\n]<]minimax[>[</tool_call>``.
Reasoning in ``<mm:think>…</mm:think>``.
"""

from __future__ import annotations

import json
from typing import Any

from localtools.dialects.formatted import FormattedSpecDialect
from localtools.dialects.registry import register
from localtools.dialects.spec import DialectSpec, ReasoningSpec
from localtools.dialects.specdialect import Markers, call_arguments, call_name

NS = "]<]minimax[>["

SPEC = DialectSpec(
    name="minimax-m3",
    shape="tagged",
    section_start=f"{NS}<tool_call>\n",
    section_end=f"\n{NS}</tool_call>",
    name_prefix=f'{NS}<invoke name="',
    name_suffix='">',
    arg_name_prefix=f"{NS}<",
    arg_name_suffix=">",
    arg_value_suffix=NS + "</{key}>",
    call_end=f"{NS}</invoke>",
    call_sep="\n",
    reasoning=ReasoningSpec("<mm:think>", "</mm:think>"),
)


class MiniMaxM3Dialect(FormattedSpecDialect):
    def render_call(self, call: dict[str, Any], index: int) -> str:
        args = "".join(
            f"{NS}<{k}>{v if isinstance(v, str) else json.dumps(v, ensure_ascii=False)}{NS}</{k}>"
            for k, v in call_arguments(call).items()
        )
        return f'{NS}<invoke name="{call_name(call)}">{args}{NS}</invoke>'


DIALECT = register(
    MiniMaxM3Dialect(SPEC, Markers(all_of=(NS, '<invoke name=')), "MiniMax-M3: ]<]minimax[>[<invoke name=…>]<]minimax[>[<K>V…")
)
DIALECT.priority = 330  # detection order: higher is tried first (see registry)
