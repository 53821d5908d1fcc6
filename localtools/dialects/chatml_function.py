"""ChatML models without tool training (SmolLM2, OpenHermes 2.5, …).

The template cannot show tools, so they go into the system prompt, and the
model is taught the Hermes call syntax: small ChatML models have seen it more
than any other, and it is unambiguous to parse and to constrain.
"""

from __future__ import annotations

from dataclasses import replace

from localtools.dialects.hermes import SPEC as HERMES
from localtools.dialects.registry import register
from localtools.dialects.specdialect import Markers
from localtools.dialects.untrained import UntrainedDialect

SPEC = replace(HERMES, name="chatml-function")

DIALECT = register(
    UntrainedDialect(
        SPEC,
        Markers(all_of=("<|im_start|>",)),
        "ChatML template without tool support: tools in the system prompt, Hermes-style calls",
    )
)
DIALECT.priority = 10  # detection order: higher is tried first (see registry)
# No tool training (dialects/untrained.py): in `auto` the first tokens choose between a
# call and text (dialects/decide.py); the text branch opens with this, which the parser drops.
DIALECT.text_opener = "answer:"  # lowercase: its prefixes ("a", "an") rarely open prose, so the choice is real
