"""YandexGPT 5: ``[TOOL_CALL_START]NAME\\n{args}``."""

from __future__ import annotations

from localtools.dialects.registry import register
from localtools.dialects.spec import DialectSpec
from localtools.dialects.specdialect import Markers, SpecDialect

SPEC = DialectSpec(name="yandexgpt", shape="tag_json", call_start="[TOOL_CALL_START]", name_suffix="\n")

DIALECT = register(SpecDialect(SPEC, Markers(all_of=("[TOOL_CALL_START]",)), "YandexGPT: [TOOL_CALL_START]NAME\\n{args}"))
DIALECT.priority = 170  # detection order: higher is tried first (see registry)
