"""GigaChat 3.1: ``<|function_call|>{"name", "arguments"}``."""

from __future__ import annotations

from localtools.dialects.registry import register
from localtools.dialects.spec import DialectSpec
from localtools.dialects.specdialect import Markers, SpecDialect

SPEC = DialectSpec(name="gigachat-3.1", shape="json", call_start="<|function_call|>")

DIALECT = register(SpecDialect(SPEC, Markers(all_of=("<|function_call|>",)), "GigaChat 3.1: <|function_call|>{name, arguments}"))
DIALECT.priority = 80  # detection order: higher is tried first (see registry)
