"""Dialects by name, and detection in a fixed order, most specific first."""

from __future__ import annotations

from localtools.dialects.base import Detection, Dialect

_ORDER: list[Dialect] = []


def register(dialect: Dialect) -> Dialect:
    _ORDER.append(dialect)
    return dialect


# Detection order: most specific markers first; the ChatML and generic
# fallbacks last.
_MODULES = (
    "gpt_oss",
    "gemma4",
    "functiongemma",
    "functionary_v3",
    "functionary_v2",
    "kimi_k2",
    "kimi_k3",
    "deepseek_v32",
    "gigachat35",
    "solar",
    "hy3",
    "minimax",
    "minimax_m3",
    "glm",
    "seed_oss",
    "qwen3_coder",
    "minicpm5",
    "functionary_v31",
    "mistral",
    "phi4_mini",
    "firefunction_v2",
    "deepseek_r1",
    "deepseek_v3",
    "command_r7b",
    "command_r",
    "granite",
    "granite_20b_fc",
    "nemotron",
    "yandexgpt",
    "apertus",
    "lfm2",
    "minicpm3",
    "pythonic",
    "hunyuan",
    "apriel",
    "minimax_m1",
    "gigachat",
    "gigachat31",
    "internlm",
    "xlam",
    "hyperclovax",
    "hermes",
    "llama3",
    "qwen25_coder",
    "chatml_function",
    "generic",
)


def _load() -> None:
    if _ORDER:
        return
    import importlib

    for module in _MODULES:
        importlib.import_module(f"localtools.dialects.{module}")


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
            source = "fallback" if d.name in ("chatml-function", "generic") else "module"
            return Detection(d.name, evidence, source)
    return Detection("generic", [])  # unreachable: generic matches everything
