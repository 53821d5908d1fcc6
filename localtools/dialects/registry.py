"""Dialects by name, and detection in a fixed order, most specific first."""

from __future__ import annotations

from localtools.dialects.base import Detection, Dialect

_ORDER: list[Dialect] = []


def register(dialect: Dialect) -> Dialect:
    _ORDER.append(dialect)
    return dialect


def _load() -> None:
    if _ORDER:
        return
    from localtools.dialects import plain  # noqa: F401  (registers itself)


def all_dialects() -> list[Dialect]:
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
    """The first dialect (in registry order) whose markers match the template."""
    _load()
    for d in _ORDER:
        evidence = d.detect(template)
        if evidence is not None:
            return Detection(d.name, evidence)
    return Detection("generic", [])
