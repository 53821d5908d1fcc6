"""Tool names the model sees: `server__tool`, within OpenAI's `^[a-zA-Z0-9_-]{1,64}$`.

Two servers may both have a `search` tool, and MCP tool names may contain
dots, slashes or other characters OpenAI refuses, so every MCP tool is offered
as `<server>__<tool>` with each other character replaced by `_`. A name over
64 characters is cut and given a short hash of the full name; a name that is
still taken (two originals that sanitise alike) gets `_2`, `_3`, …
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Container

__all__ = ["SEPARATOR", "MAX_NAME", "sanitize", "namespaced"]

SEPARATOR = "__"
MAX_NAME = 64
_BAD = re.compile(r"[^A-Za-z0-9_-]")


def sanitize(text: str) -> str:
    """Every character outside [A-Za-z0-9_-] becomes `_`; never empty."""
    return _BAD.sub("_", text) or "_"


def _fit(name: str, full: str) -> str:
    if len(name) <= MAX_NAME:
        return name
    digest = hashlib.sha1(full.encode()).hexdigest()[:8]
    return f"{name[: MAX_NAME - len(digest) - 1]}_{digest}"


def namespaced(server: str, tool: str, taken: Container[str] = ()) -> str:
    """The exposed name of `tool` on `server`, distinct from every name in `taken`."""
    full = f"{server}{SEPARATOR}{tool}"
    base = _fit(f"{sanitize(server)}{SEPARATOR}{sanitize(tool)}", full)
    name, n = base, 1
    while name in taken:
        n += 1
        suffix = f"_{n}"
        name = base[: MAX_NAME - len(suffix)] + suffix
    return name
