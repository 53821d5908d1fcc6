"""HyperCLOVA X SEED Think: the assistant header names the recipient,
``<|im_start|>assistant -> tool/function_call\\n[{"name", "arguments"}]``."""

from __future__ import annotations

from localtools.dialects.registry import register
from localtools.dialects.spec import DialectSpec, ReasoningSpec
from localtools.dialects.specdialect import Markers, SpecDialect

SPEC = DialectSpec(
    name="hyperclovax",
    shape="json",
    section_start=" -> tool/function_call\n",
    array=True,
    reasoning=ReasoningSpec("<think>", "</think>"),
)

DIALECT = register(SpecDialect(SPEC, Markers(all_of=("tool/function_call",)), "HyperCLOVA X: -> tool/function_call [{name, arguments}]"))
DIALECT.priority = 50  # detection order: higher is tried first (see registry)
