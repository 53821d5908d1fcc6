"""DeepSeek R1 (and its distills, original V3):
``<｜tool▁calls▁begin｜><｜tool▁call▁begin｜>function<｜tool▁sep｜>NAME\\n```json\\n{…}\\n```<｜tool▁call▁end｜>…<｜tool▁calls▁end｜>``.

The generation prompt opens ``<think>``, so output starts in reasoning.
"""

from __future__ import annotations

from localtools.dialects.registry import register
from localtools.dialects.spec import DialectSpec, ReasoningSpec
from localtools.dialects.specdialect import Markers, SpecDialect

SPEC = DialectSpec(
    name="deepseek-r1",
    shape="tag_json",
    section_start="<｜tool▁calls▁begin｜>",
    section_end="<｜tool▁calls▁end｜>",
    call_start="<｜tool▁call▁begin｜>",
    name_prefix="function<｜tool▁sep｜>",
    name_suffix="\n",
    args_start="```json\n",
    args_end="\n```",
    call_end="<｜tool▁call▁end｜>",
    call_sep="\n",
    reasoning=ReasoningSpec("<think>", "</think>"),
)

DIALECT = register(
    SpecDialect(
        SPEC,
        Markers(all_of=("<｜tool▁sep｜>",), any_of=("```json", "function<｜tool▁sep｜>"), none_of=("DSML",)),
        "DeepSeek R1: function<｜tool▁sep｜>NAME + ```json args in <｜tool▁calls▁begin｜>",
    )
)
DIALECT.priority = 240  # detection order: higher is tried first (see registry)
