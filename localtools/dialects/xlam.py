"""xLAM: a bare JSON array of calls at the start of the reply,
``[{"name": NAME, "arguments": {…}}, …]``."""

from __future__ import annotations

from localtools.dialects.registry import register
from localtools.dialects.spec import DialectSpec
from localtools.dialects.specdialect import Markers, SpecDialect

SPEC = DialectSpec(name="xlam", shape="json", array=True, bare_json=True)

DIALECT = register(SpecDialect(SPEC, Markers(all_of=("xLAM",)), "xLAM: bare [{name, arguments}] at the start"))
DIALECT.priority = 60  # detection order: higher is tried first (see registry)
