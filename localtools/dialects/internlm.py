"""InternLM2: ``<|action_start|><|plugin|>\\n{"name", "arguments"}<|action_end|>``."""

from __future__ import annotations

from localtools.dialects.registry import register
from localtools.dialects.spec import DialectSpec
from localtools.dialects.specdialect import Markers, SpecDialect

SPEC = DialectSpec(
    name="internlm",
    shape="json",
    call_start="<|action_start|><|plugin|>\n",
    call_end="<|action_end|>",
    call_sep="\n",
    stops=("<|action_end|>",),
)

DIALECT = register(SpecDialect(SPEC, Markers(all_of=("<|plugin|>",)), "InternLM2: <|action_start|><|plugin|>{name, arguments}<|action_end|>"))
DIALECT.priority = 70  # detection order: higher is tried first (see registry)
