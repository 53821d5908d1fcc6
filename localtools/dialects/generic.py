"""Any template without tool support that is not ChatML.

Same call syntax as chatml-function (tools explained in the system prompt,
calls in <tool_call> JSON), since nothing better is known about the model.
"""

from __future__ import annotations

from dataclasses import replace

from localtools.dialects.hermes import SPEC as HERMES
from localtools.dialects.registry import register
from localtools.dialects.specdialect import Markers
from localtools.dialects.untrained import UntrainedDialect

SPEC = replace(HERMES, name="generic")

DIALECT = register(UntrainedDialect(SPEC, Markers(), "No tool syntax known: tools in the system prompt"))
DIALECT.priority = 0  # detection order: higher is tried first (see registry)
# No tool training (dialects/untrained.py): in `auto` the first tokens choose between a
# call and text (dialects/decide.py); the text branch opens with this, which the parser drops.
DIALECT.text_opener = "answer:"  # lowercase: its prefixes ("a", "an") rarely open prose, so the choice is real
