"""FireFunction v2: `` functools[{"name": …, "arguments": …}, …]``."""

from __future__ import annotations

from localtools.dialects.registry import register
from localtools.dialects.spec import DialectSpec
from localtools.dialects.specdialect import Markers, SpecDialect

SPEC = DialectSpec(
    name="firefunction-v2",
    shape="json",
    section_start=" functools",
    array=True,
)

DIALECT = register(
    SpecDialect(SPEC, Markers(all_of=(" functools[",)), "FireFunction v2: functools[{name, arguments}, …]")
)
