"""Registry of tool-call dialects and detection from a chat template's source."""

from __future__ import annotations

from localtools.dialects.base import (
    ArgsDelta,
    CallEnd,
    CallStart,
    ContentDelta,
    Detection,
    Dialect,
    Event,
    Grammar,
    MessageBuilder,
    ParsedMessage,
    ReasoningDelta,
    StreamParser,
    ToolCall,
    parse_all,
)
from localtools.dialects.registry import all_dialects, detect, get_dialect

__all__ = [
    "ArgsDelta",
    "CallEnd",
    "CallStart",
    "ContentDelta",
    "Detection",
    "Dialect",
    "Event",
    "Grammar",
    "MessageBuilder",
    "ParsedMessage",
    "ReasoningDelta",
    "StreamParser",
    "ToolCall",
    "all_dialects",
    "detect",
    "get_dialect",
    "parse_all",
]
