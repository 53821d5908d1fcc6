"""GigaChat 3: ``<|message_sep|>\\n\\nfunction call<|role_sep|>\\n{"name", "arguments"}``."""

from __future__ import annotations

from localtools.dialects.registry import register
from localtools.dialects.spec import DialectSpec
from localtools.dialects.specdialect import Markers, SpecDialect

SPEC = DialectSpec(name="gigachat", shape="json", call_start="<|message_sep|>\n\nfunction call<|role_sep|>\n")

DIALECT = register(
    SpecDialect(
        SPEC,
        Markers(all_of=("<|role_sep|>", "<|message_sep|>", "function call"), none_of=("<|function_call|>", "GCML")),
        "GigaChat 3: function call<|role_sep|>{name, arguments}",
    )
)
DIALECT.priority = 90  # detection order: higher is tried first (see registry)
