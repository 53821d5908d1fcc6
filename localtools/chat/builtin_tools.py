"""A few harmless tools for trying tool calling: the clock, arithmetic, reading files.

A model's arguments are untrusted input, so every tool here is closed: `calculate`
evaluates a whitelisted arithmetic AST (no names, attributes or calls beyond a few math
functions, bounded number sizes), and the file tools see only the directory the user
names. Nothing touches the network or runs a command.
"""

from __future__ import annotations

import ast
import math
import operator
import os
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

__all__ = ["current_datetime", "calculate", "make_file_tools", "default_tools"]

MAX_EXPRESSION_CHARS = 500
MAX_INT_BITS = 4096  # about 1233 decimal digits: plenty for arithmetic, cheap to compute
MAX_READ_BYTES = 1_048_576
MAX_LISTED_ENTRIES = 1000


def current_datetime(timezone: str = "UTC") -> str:
    """Get the current date and time.

    Args:
        timezone: An IANA time zone name such as "UTC", "Europe/Paris" or "America/New_York".
    """
    try:
        zone = ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(f"unknown time zone {timezone!r}; use an IANA name like 'Europe/Paris'") from exc
    now = datetime.now(zone)
    return f"{now.isoformat(timespec='seconds')} ({now.strftime('%A')}, {timezone})"


# ---------------------------------------------------------------- calculate

def _round(number: Any, ndigits: int | None = None) -> Any:
    """round() with a sane number of digits (a huge one would build a huge power of ten)."""
    if ndigits is not None and (not isinstance(ndigits, int) or abs(ndigits) > 100):
        raise ValueError("ndigits must be an integer between -100 and 100")
    return round(number, ndigits) if ndigits is not None else round(number)


_BINARY: dict[type[ast.operator], Callable[[Any, Any], Any]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv,
    ast.Mod: operator.mod,
    ast.Pow: operator.pow,
}
_UNARY: dict[type[ast.unaryop], Callable[[Any], Any]] = {ast.UAdd: operator.pos, ast.USub: operator.neg}
_FUNCTIONS: dict[str, Callable[..., Any]] = {
    "sqrt": math.sqrt, "exp": math.exp, "log": math.log, "log10": math.log10, "log2": math.log2,
    "sin": math.sin, "cos": math.cos, "tan": math.tan, "asin": math.asin, "acos": math.acos,
    "atan": math.atan, "atan2": math.atan2, "hypot": math.hypot, "floor": math.floor,
    "ceil": math.ceil, "abs": abs, "round": _round, "min": min, "max": max,
}
_CONSTANTS = {"pi": math.pi, "e": math.e, "tau": math.tau}


def _check_size(value: Any) -> Any:
    if isinstance(value, complex):
        raise ValueError("the result is not a real number")
    if isinstance(value, int) and value.bit_length() > MAX_INT_BITS:
        raise ValueError("the number is too large")
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError("the result is not a finite number")
    return value


def _power(base: Any, exponent: Any) -> Any:
    if isinstance(base, int) and isinstance(exponent, int) and exponent > 0 and abs(base) > 1:
        if (abs(base).bit_length() - 1) * exponent > MAX_INT_BITS:
            raise ValueError("the number is too large")
    try:
        return base**exponent
    except OverflowError as exc:
        raise ValueError("the number is too large") from exc


def _evaluate(node: ast.AST) -> Any:
    if isinstance(node, ast.Expression):
        return _evaluate(node.body)
    if isinstance(node, ast.Constant):
        if isinstance(node.value, bool) or not isinstance(node.value, (int, float)):
            raise ValueError(f"only numbers are allowed, not {node.value!r}")
        return _check_size(node.value)
    if isinstance(node, ast.BinOp) and type(node.op) in _BINARY:
        left, right = _evaluate(node.left), _evaluate(node.right)
        if isinstance(node.op, ast.Pow):
            return _check_size(_power(left, right))
        try:
            return _check_size(_BINARY[type(node.op)](left, right))
        except ZeroDivisionError as exc:
            raise ValueError("division by zero") from exc
        except OverflowError as exc:
            raise ValueError("the number is too large") from exc
    if isinstance(node, ast.UnaryOp) and type(node.op) in _UNARY:
        return _UNARY[type(node.op)](_evaluate(node.operand))
    if isinstance(node, ast.Name) and node.id in _CONSTANTS:
        return _CONSTANTS[node.id]
    if (
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Name)
        and node.func.id in _FUNCTIONS
        and not node.keywords
    ):
        args = [_evaluate(arg) for arg in node.args]  # ast.Starred is refused inside
        try:
            return _check_size(_FUNCTIONS[node.func.id](*args))
        except (TypeError, ValueError, OverflowError) as exc:
            raise ValueError(f"{node.func.id}: {exc}") from exc
    allowed = ", ".join(sorted(_FUNCTIONS) + sorted(_CONSTANTS))
    raise ValueError(
        f"not allowed in an arithmetic expression: {ast.unparse(node) if isinstance(node, ast.expr) else type(node).__name__!s}"
        f" (use numbers, + - * / // % **, parentheses and {allowed})"
    )


def calculate(expression: str) -> int | float:
    """Evaluate an arithmetic expression exactly as written, e.g. "(2 + 3) * 4" or "sqrt(2) / 2".

    Args:
        expression: Numbers, + - * / // % ** and parentheses, the constants pi, e and tau, and the functions sqrt, exp, log, log10, log2, sin, cos, tan, asin, acos, atan, atan2, hypot, floor, ceil, abs, round, min and max.
    """
    if len(expression) > MAX_EXPRESSION_CHARS:
        raise ValueError(f"expression longer than {MAX_EXPRESSION_CHARS} characters")
    try:
        tree = ast.parse(expression.strip(), mode="eval")
    except SyntaxError as exc:
        raise ValueError(f"not a valid expression: {exc.msg}") from exc
    except RecursionError as exc:  # pragma: no cover - bounded by the length limit
        raise ValueError("expression nested too deeply") from exc
    return _evaluate(tree)


# ---------------------------------------------------------------- files


def _confined(root: Path, path: str) -> Path:
    """`path` inside `root` after following symlinks, or ValueError."""
    if "\x00" in path:
        raise ValueError("invalid path")
    candidate = Path(path)
    if ".." in candidate.parts:
        raise ValueError(f"'..' is not allowed in paths: {path}")
    full = candidate if candidate.is_absolute() else root / candidate
    resolved = Path(os.path.realpath(full))
    if resolved != root and not resolved.is_relative_to(root):
        raise ValueError(f"{path} is outside the allowed directory")
    return resolved


def make_file_tools(root: str | Path) -> list[Callable[..., Any]]:
    """`list_files` and `read_file` tools that can only see inside `root`."""
    base = Path(os.path.realpath(Path(root).expanduser()))
    if not base.is_dir():
        raise ValueError(f"not a directory: {root}")

    def list_files(path: str = ".") -> list[str]:
        """List the files and folders in a folder of the shared directory (folders end with "/").

        Args:
            path: A folder relative to the shared directory; "." is the directory itself.
        """
        folder = _confined(base, path)
        if not folder.is_dir():
            raise ValueError(f"not a folder: {path}")
        names = []
        for entry in sorted(os.scandir(folder), key=lambda e: e.name):
            names.append(entry.name + ("/" if entry.is_dir(follow_symlinks=False) else ""))
            if len(names) >= MAX_LISTED_ENTRIES:
                names.append(f"... (more than {MAX_LISTED_ENTRIES} entries)")
                break
        return names

    def read_file(path: str, max_bytes: int = 65536) -> str:
        """Read a text file of the shared directory.

        Args:
            path: The file, relative to the shared directory.
            max_bytes: Read at most this many bytes from the start of the file.
        """
        file = _confined(base, path)
        if not file.is_file():
            raise ValueError(f"not a file: {path}")
        limit = max(0, min(int(max_bytes), MAX_READ_BYTES))
        with file.open("rb") as f:
            data = f.read(limit + 1)
        text = data[:limit].decode("utf-8", errors="replace")
        if len(data) > limit:
            text += f"\n... (truncated at {limit} bytes)"
        return text

    return [list_files, read_file]


def default_tools(root: str | Path | None = None) -> list[Callable[..., Any]]:
    """The clock and the calculator, plus the file tools when a root is given."""
    tools: list[Callable[..., Any]] = [current_datetime, calculate]
    if root is not None:
        tools.extend(make_file_tools(root))
    return tools
