"""Dialects by name, and detection in priority order, most specific first.

Each dialect module declares its own `priority` beside the dialect; the
registry finds the modules by listing the package, so adding a dialect is
one new module and nothing here.
"""

from __future__ import annotations

import importlib
import pkgutil
from typing import TypeVar

from localtools.dialects.base import Detection, Dialect

D = TypeVar("D", bound=Dialect)

_REGISTERED: list[Dialect] = []
_ORDER: list[Dialect] = []
FALLBACK_NAMES = ("chatml-function", "generic")


def register(dialect: D) -> D:
    """Called by each dialect module at import time."""
    _REGISTERED.append(dialect)
    return dialect


def _load() -> None:
    """Import every module of the package once; those that register() are dialects."""
    if _ORDER:
        return
    package = importlib.import_module("localtools.dialects")
    for info in pkgutil.iter_modules(package.__path__):
        if not info.ispkg and not info.name.startswith("_"):
            importlib.import_module(f"localtools.dialects.{info.name}")
    # highest priority first; equal priorities keep the (alphabetical) discovery order.
    # Assigned whole, so a second (re-entrant or concurrent) load cannot duplicate entries.
    _ORDER[:] = sorted(dict.fromkeys(_REGISTERED), key=lambda d: -d.priority)


def all_dialects() -> list[Dialect]:
    """Every registered dialect, in detection order."""
    _load()
    return list(_ORDER)


def get_dialect(name: str) -> Dialect:
    _load()
    for d in _ORDER:
        if d.name == name:
            return d
    known = ", ".join(d.name for d in _ORDER)
    raise KeyError(f"unknown dialect {name!r}; known: {known}")


def detect(template: str) -> Detection:
    """The first dialect (in priority order) whose markers match the template."""
    _load()
    for d in _ORDER:
        evidence = d.detect(template)
        if evidence is not None:
            source = "fallback" if d.name in FALLBACK_NAMES else "module"
            return Detection(d.name, evidence, source)
    return Detection("generic", [])  # unreachable: generic matches everything
