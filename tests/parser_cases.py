"""Loads the recorded model outputs of tests/data/outputs/ for parser tests."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

OUTPUTS = Path(__file__).resolve().parent / "data" / "outputs"


def all_tools() -> dict[str, dict[str, Any]]:
    data = json.loads((OUTPUTS / "tools.json").read_text())
    if isinstance(data, dict):
        return {name: tool for name, tool in data.items()}
    return {t["function"]["name"]: t for t in data}


def load_cases() -> list[tuple[str, dict[str, Any]]]:
    """(dialect, case) for every recorded output."""
    cases = []
    for path in sorted(OUTPUTS.glob("*.json")):
        if path.name == "tools.json":
            continue
        for case in json.loads(path.read_text()):
            cases.append((path.stem, case))
    return cases


def tools_for(case: dict[str, Any]) -> list[dict[str, Any]]:
    table = all_tools()
    return [table[name] for name in case.get("tools", []) if name in table]
