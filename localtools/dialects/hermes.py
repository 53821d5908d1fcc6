"""Hermes 2 Pro / Hermes 3, Qwen2.5, Qwen3, QwQ and their fine-tunes.

Calls: ``<tool_call>\\n{"name": …, "arguments": …}\\n</tool_call>``, repeated
for parallel calls; Qwen3/QwQ think in ``<think>…</think>`` first.
"""

from __future__ import annotations

from localtools.dialects.registry import register
from localtools.dialects.spec import DialectSpec, ReasoningSpec
from localtools.dialects.specdialect import Markers, SpecDialect

SPEC = DialectSpec(
    name="hermes",
    shape="json",
    call_start="<tool_call>\n",
    call_end="\n</tool_call>",
    call_sep="\n",
    reasoning=ReasoningSpec("<think>", "</think>"),
)

DIALECT = register(
    SpecDialect(
        SPEC,
        Markers(all_of=("<tool_call>",), none_of=("<function=", "<arg_key>", "<tool_call>[")),
        "JSON in <tool_call> tags (Hermes, Qwen2.5/Qwen3/QwQ)",
    )
)
DIALECT.priority = 40  # detection order: higher is tried first (see registry)
