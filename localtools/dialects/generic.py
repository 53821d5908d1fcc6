"""Any template without tool support that is not ChatML.

Same call syntax as chatml-function (tools explained in the system prompt,
calls in <tool_call> JSON), since nothing better is known about the model.
"""

from __future__ import annotations

from localtools.dialects.hermes import SPEC as HERMES
from localtools.dialects.registry import register
from localtools.dialects.spec import DialectSpec
from localtools.dialects.specdialect import Markers, SpecDialect

SPEC = DialectSpec(
    name="generic",
    shape="json",
    call_start=HERMES.call_start,
    call_end=HERMES.call_end,
    call_sep=HERMES.call_sep,
    reasoning=HERMES.reasoning,
)

DIALECT = register(SpecDialect(SPEC, Markers(), "No tool syntax known: tools in the system prompt"))
