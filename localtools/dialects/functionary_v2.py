"""Functionary v2 (small/medium v2.x; also the Llama-3 based v2.5).

Turns are ``<|from|>assistant\\n<|recipient|>NAME\\n<|content|>{args}``; the
recipient ``all`` means text for the user. The prompt ends at the recipient.
"""

from __future__ import annotations

from localtools.dialects.registry import register
from localtools.dialects.spec import DialectSpec
from localtools.dialects.specdialect import Markers, SpecDialect

SPEC = DialectSpec(
    name="functionary-v2",
    shape="tag_json",
    call_start="<|from|>assistant\n",
    name_prefix="<|recipient|>",
    name_suffix="\n<|content|>",
    call_end="<|stop|>",
    call_sep="\n",
    content_name="all",
    stops=("<|stop|>",),
)

DIALECT = register(
    SpecDialect(SPEC, Markers(all_of=("<|recipient|>",)), "Functionary v2: <|recipient|>NAME <|content|>{args}")
)
