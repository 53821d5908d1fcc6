"""DeepSeek V3.1 (and vLLM's V3.1/V3.2 tool templates):
``<｜tool▁calls▁begin｜><｜tool▁call▁begin｜>NAME<｜tool▁sep｜>{…}<｜tool▁call▁end｜>…<｜tool▁calls▁end｜>``.

Thinking mode: the prompt ends in ``<think>``; non-thinking in ``</think>``.
"""

from __future__ import annotations

from localtools.dialects.registry import register
from localtools.dialects.spec import DialectSpec, ReasoningSpec
from localtools.dialects.specdialect import Markers, SpecDialect

SPEC = DialectSpec(
    name="deepseek-v3",
    shape="tag_json",
    section_start="<｜tool▁calls▁begin｜>",
    section_end="<｜tool▁calls▁end｜>",
    call_start="<｜tool▁call▁begin｜>",
    name_suffix="<｜tool▁sep｜>",
    call_end="<｜tool▁call▁end｜>",
    reasoning=ReasoningSpec("<think>", "</think>"),
)

DIALECT = register(
    SpecDialect(
        SPEC,
        Markers(all_of=("<｜tool▁sep｜>",), none_of=("```json", "function<｜tool▁sep｜>", "DSML")),
        "DeepSeek V3.1: NAME<｜tool▁sep｜>{args} in <｜tool▁calls▁begin｜>",
    )
)
DIALECT.priority = 230  # detection order: higher is tried first (see registry)
