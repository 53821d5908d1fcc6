"""Qwen2.5-Coder (vLLM's template): ``<tools>\\n{"name", "arguments"}\\n</tools>``."""

from __future__ import annotations

from localtools.dialects.registry import register
from localtools.dialects.spec import DialectSpec
from localtools.dialects.specdialect import Markers, SpecDialect

SPEC = DialectSpec(name="qwen2.5-coder", shape="json", call_start="<tools>\n", call_end="\n</tools>", call_sep="\n")

DIALECT = register(
    SpecDialect(
        SPEC,
        Markers(all_of=("<tools>", "<|im_start|>"), none_of=("<tool_call>", "<function name=", "<tool_calls>")),
        "Qwen2.5-Coder: <tools>{name, arguments}</tools>",
    )
)
DIALECT.priority = 20  # detection order: higher is tried first (see registry)
