"""The package's layers import downwards only: no import cycle, lazy imports
included (scripts/import_cycles.py reads the sources), and the resolution
policy sits above `dialects` and `analysis`."""

from __future__ import annotations

import importlib.util
from pathlib import Path

SCRIPT = Path(__file__).resolve().parent.parent / "scripts" / "import_cycles.py"


def _checker():
    spec = importlib.util.spec_from_file_location("import_cycles", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_no_import_cycle_in_the_package() -> None:
    checker = _checker()
    graph = checker.import_graph()
    assert checker.cycles(graph) == []
    assert checker.cycles(checker.by_subpackage(graph)) == []


def test_the_checker_sees_a_lazy_cycle() -> None:
    checker = _checker()
    graph = {"a": {"b"}, "b": {"a"}, "c": {"a"}}
    assert checker.cycles(graph) == [["a", "b"]]


def test_dialects_and_analysis_never_import_the_resolution_policy() -> None:
    graph = _checker().import_graph()
    below = [m for m in graph if m.startswith(("localtools.dialects", "localtools.analysis"))]
    assert below
    offenders = {m: sorted(t for t in graph[m] if t.startswith("localtools.resolution")) for m in below}
    assert {m: t for m, t in offenders.items() if t} == {}
    assert "localtools.analysis" in graph["localtools.resolution.dialect"]
