"""A DialectSpec written out for people to review, fix and pin in models.toml."""

from __future__ import annotations

import json
from typing import Any

from localtools.dialects.spec import DialectSpec


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)  # a JSON string is a valid TOML basic string
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{k} = {_toml_value(v)}" for k, v in value.items()) + " }"
    raise TypeError(f"cannot write {type(value).__name__} to TOML")


def spec_to_toml(spec: DialectSpec, model_name: str = "MODEL") -> str:
    """A models.toml fragment pinning this spec for a model entry."""
    lines = [
        f"# Tool-call dialect for {model_name}: review the markers, then add this to models.toml.",
        f'[models."{model_name}".dialect_spec]',
    ]
    for key, value in spec.to_dict().items():
        lines.append(f"{key} = {_toml_value(value)}")
    return "\n".join(lines) + "\n"


def spec_to_json(spec: DialectSpec) -> str:
    return json.dumps(spec.to_dict(), indent=2, ensure_ascii=False) + "\n"


def write_spec(spec: DialectSpec, path: str, model_name: str = "MODEL") -> None:
    text = spec_to_json(spec) if path.endswith(".json") else spec_to_toml(spec, model_name)
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)
