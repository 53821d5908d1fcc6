"""The package keeps the project's size limits: no module over 800 lines, no function
over 80 (docstring and decorators included), so one change never has to read a wall.

Measured with `ast` on the sources, so nested functions and methods count on their own
and a long string literal counts as the lines it spans.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "localtools"
MAX_MODULE_LINES = 800
MAX_FUNCTION_LINES = 80
SOURCES = sorted(PACKAGE.rglob("*.py"))


def _function_lengths(source: str) -> list[tuple[str, int, int]]:
    """(qualified name, first line, length) of every function in `source`."""
    found: list[tuple[str, int, int]] = []

    def visit(node: ast.AST, prefix: str) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)):
                first = min([child.lineno, *(d.lineno for d in child.decorator_list)])
                assert child.end_lineno is not None
                found.append((prefix + child.name, first, child.end_lineno - first + 1))
                visit(child, f"{prefix}{child.name}.")
            elif isinstance(child, ast.ClassDef):
                visit(child, f"{prefix}{child.name}.")
            else:
                visit(child, prefix)

    visit(ast.parse(source), "")
    return found


def test_the_package_has_sources() -> None:
    assert len(SOURCES) > 50 and PACKAGE / "gbnf.py" in SOURCES


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_module_and_functions_are_small(path: Path) -> None:
    source = path.read_text(encoding="utf-8")
    lines = len(source.splitlines())
    assert lines <= MAX_MODULE_LINES, f"{path.name} has {lines} lines (limit {MAX_MODULE_LINES}): split it"
    long = [f"{name} (line {first}): {n} lines" for name, first, n in _function_lengths(source)
            if n > MAX_FUNCTION_LINES]
    assert not long, f"functions over {MAX_FUNCTION_LINES} lines in {path.name}: {long}"


def test_the_measure_counts_methods_nested_functions_and_decorators() -> None:
    source = (
        "class A:\n"
        "    @staticmethod\n"
        "    def m():\n"
        "        def inner():\n"
        "            return 1\n"
        "        return inner\n"
        "async def f():\n"
        "    pass\n"
    )
    assert _function_lengths(source) == [("A.m", 2, 5), ("A.m.inner", 4, 2), ("f", 7, 2)]
