"""Nemotron Nano v2 / Llama-3.3-Nemotron-Super:
``<TOOLCALL>[{"name": NAME, "arguments": {…}}]</TOOLCALL>``, reasoning in ``<think>``."""

from __future__ import annotations

from localtools.dialects.registry import register
from localtools.dialects.spec import DialectSpec, ReasoningSpec
from localtools.dialects.specdialect import Markers, SpecDialect

SPEC = DialectSpec(
    name="nemotron",
    shape="json",
    section_start="<TOOLCALL>",
    section_end="</TOOLCALL>",
    array=True,
    reasoning=ReasoningSpec("<think>", "</think>"),
)

DIALECT = register(SpecDialect(SPEC, Markers(all_of=("<TOOLCALL>",)), "Nemotron: <TOOLCALL>[{name, arguments}]</TOOLCALL>"))
DIALECT.priority = 180  # detection order: higher is tried first (see registry)
