"""Apertus: ``<|tools_prefix|>[{"NAME": {args}}]<|tools_suffix|>`` (the name is the key)."""

from __future__ import annotations

from localtools.dialects.registry import register
from localtools.dialects.spec import DialectSpec
from localtools.dialects.specdialect import Markers, SpecDialect

SPEC = DialectSpec(
    name="apertus",
    shape="json",
    section_start="<|tools_prefix|>",
    section_end="<|tools_suffix|>",
    array=True,
    name_is_key=True,
)

DIALECT = register(
    SpecDialect(
        SPEC,
        Markers(all_of=("<|tools_prefix|>", "<|assistant_start|>")),
        'Apertus: <|tools_prefix|>[{"NAME": {args}}]<|tools_suffix|>',
    )
)
DIALECT.priority = 160  # detection order: higher is tried first (see registry)
