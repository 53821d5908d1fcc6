"""Granite 3.x: ``<|tool_call|>[{"name": NAME, "arguments": {…}}]``.

Granite 3.3 may think in ``<think>…</think>`` and answer in
``<response>…</response>`` (wrappers dropped from the content). Granite 4
writes Hermes ``<tool_call>`` and is detected as `hermes`.
"""

from __future__ import annotations

from localtools.dialects.registry import register
from localtools.dialects.spec import DialectSpec, ReasoningSpec
from localtools.dialects.specdialect import Markers, SpecDialect

SPEC = DialectSpec(
    name="granite",
    shape="json",
    section_start="<|tool_call|>",
    array=True,
    reasoning=ReasoningSpec("<think>", "</think>"),
    strip_markers=("<response>", "</response>"),
)

DIALECT = register(
    SpecDialect(SPEC, Markers(all_of=("<|tool_call|>", "<|start_of_role|>")), "Granite 3: <|tool_call|>[{name, arguments}]")
)
DIALECT.priority = 200  # detection order: higher is tried first (see registry)
