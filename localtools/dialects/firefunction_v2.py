"""FireFunction v2: `` functools[{"name": …, "arguments": …}, …]``."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from localtools.dialects.registry import register
from localtools.dialects.spec import DialectSpec
from localtools.dialects.specdialect import Markers, SpecDialect

SPEC = DialectSpec(
    name="firefunction-v2",
    shape="json",
    section_start=" functools",
    array=True,
)

class FireFunctionV2(SpecDialect):
    def render_kwargs(self, tools: list[dict[str, Any]]) -> dict[str, Any]:
        """Its template reads `functions` (a JSON spec) and `datetime` directly."""
        specs = [t.get("function", t) for t in tools]
        return {
            "functions": json.dumps(specs, indent=4, ensure_ascii=False),
            "datetime": datetime.now().strftime("%a, %d %b %Y %H:%M:%S"),
        }


DIALECT = register(
    FireFunctionV2(SPEC, Markers(all_of=(" functools[",)), "FireFunction v2: functools[{name, arguments}, …]")
)
DIALECT.priority = 250  # detection order: higher is tried first (see registry)
