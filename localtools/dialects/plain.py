"""Placeholder content-only dialect used until tool dialects land (foundation)."""

from __future__ import annotations

from typing import Any

from localtools.dialects.base import ContentDelta, Dialect, Event, StreamParser
from localtools.dialects.registry import register


class _ContentOnly:
    def feed(self, text: str) -> list[Event]:
        return [ContentDelta(text)] if text else []

    def finish(self) -> list[Event]:
        return []


class GenericDialect(Dialect):
    name = "generic"
    summary = "No tool support known: plain content."

    def detect(self, template: str) -> list[str] | None:
        return []

    def parser(self, tools: list[dict[str, Any]] | None, prompt_tail: str = "") -> StreamParser:
        return _ContentOnly()


register(GenericDialect())
