#!/usr/bin/env python3
"""Report import cycles among localtools' modules, lazy (function-level) imports included.

Reads every module's source with `ast` (nothing is imported), so an import hidden
inside a function counts like one at the top. A package edge: importing
`localtools.a.b` also runs `localtools.a/__init__`, so it counts as importing both.
Two views: modules, and subpackages (every module of `localtools.dialects` counted as
`localtools.dialects`), where a cycle means two layers that import each other.
Exit 1 when there is a cycle; `--top-level` ignores imports inside functions.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

ROOT = Path(sys.argv[1]).resolve() if len(sys.argv) > 1 and not sys.argv[1].startswith("-") else Path(__file__).resolve().parent.parent
PACKAGE = "localtools"


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _targets(node: ast.AST, current: str, is_package: bool) -> list[str]:
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    if isinstance(node, ast.ImportFrom):
        base = node.module or ""
        if node.level:
            anchor = current.split(".") if is_package else current.split(".")[:-1]
            anchor = anchor[: len(anchor) - (node.level - 1)]
            base = ".".join(anchor + ([base] if base else []))
        return [base] + [f"{base}.{alias.name}" for alias in node.names]
    return []


def _type_checking_imports(tree: ast.AST) -> set[int]:
    """The import statements inside `if TYPE_CHECKING:` blocks (annotations only)."""
    found: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If):
            test = node.test
            name = test.id if isinstance(test, ast.Name) else getattr(test, "attr", None)
            if name == "TYPE_CHECKING":
                found.update(id(n) for stmt in node.body for n in ast.walk(stmt))
    return found


def import_graph(top_level_only: bool = False) -> dict[str, set[str]]:
    files = {module_name(p): p for p in (ROOT / PACKAGE).rglob("*.py")}
    graph: dict[str, set[str]] = {name: set() for name in files}
    for name, path in files.items():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        typing_only = _type_checking_imports(tree)  # never run: not an import at run time
        nodes = tree.body if top_level_only else ast.walk(tree)
        for node in nodes:
            if id(node) in typing_only:
                continue
            if top_level_only and isinstance(node, ast.If):  # `if TYPE_CHECKING:` blocks etc. are skipped
                continue
            for target in _targets(node, name, path.name == "__init__.py"):
                parts = target.split(".")
                for i in range(1, len(parts) + 1):  # a.b.c runs a, a.b and a.b.c
                    prefix = ".".join(parts[:i])
                    if prefix in files and prefix != name and not name.startswith(prefix + "."):
                        graph[name].add(prefix)
    return graph


def by_subpackage(graph: dict[str, set[str]]) -> dict[str, set[str]]:
    """The graph with each module folded into its first-level subpackage (localtools.X)."""
    def layer(name: str) -> str:
        return ".".join(name.split(".")[:2])

    folded: dict[str, set[str]] = {}
    for name, targets in graph.items():
        folded.setdefault(layer(name), set()).update(layer(t) for t in targets if layer(t) != layer(name))
    return folded


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = [0]

    def visit(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    sys.setrecursionlimit(10_000)
    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def main(argv: list[str]) -> int:
    graph = import_graph(top_level_only="--top-level" in argv)
    total = 0
    for view, g in (("module", graph), ("subpackage", by_subpackage(graph))):
        found = cycles(g)
        for component in found:
            print(f"{view} cycle:", " <-> ".join(component))
        print(f"{len(found)} {view}-level import cycle(s) in {PACKAGE}/")
        total += len(found)
    return 1 if total else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
