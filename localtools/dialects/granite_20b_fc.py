"""Granite 20B function-calling: ``<function_call> {"name", "arguments"}`` per call."""

from __future__ import annotations

from localtools.dialects.registry import register
from localtools.dialects.spec import DialectSpec
from localtools.dialects.specdialect import Markers, SpecDialect

SPEC = DialectSpec(name="granite-20b-fc", shape="json", call_start="<function_call> ", call_sep="\n")

DIALECT = register(SpecDialect(SPEC, Markers(all_of=("<function_call>",)), "Granite 20B FC: <function_call> {name, arguments}"))
DIALECT.priority = 190  # detection order: higher is tried first (see registry)
