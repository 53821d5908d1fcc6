"""Print the template corpus as a table: expected dialect vs. what detection says.

Why: tests/data/template_dialects.toml is the ground truth for every real chat
template in the corpus; this report shows at a glance where
`localtools.dialects.detect` agrees, where it does not, and which templates
render tool calls at all. It works before detection exists (column shows "-").

Usage:
    .venv/bin/python scripts/corpus_report.py [--templates DIR] [--only-mismatches]
"""

from __future__ import annotations

import argparse
import sys
import tomllib
from collections import Counter
from pathlib import Path
from typing import Callable

REPO = Path(__file__).resolve().parent.parent
LABELS = REPO / "tests" / "data" / "template_dialects.toml"
DEFAULT_TEMPLATES = REPO.parent / "shared" / "templates"


def load_labels(path: Path = LABELS) -> dict[str, dict]:
    """Expected labels keyed by template path relative to the corpus folder."""
    with path.open("rb") as f:
        return tomllib.load(f)["templates"]


def load_detector() -> Callable[[str], str] | None:
    """`detect(source) -> dialect name`, or None while detection is not importable."""
    try:
        from localtools.dialects import detect
    except Exception:  # detection not written yet, or broken mid-edit
        return None

    def run(source: str) -> str:
        try:
            return detect(source).dialect
        except Exception as exc:  # report, don't crash the whole table
            return f"error: {type(exc).__name__}"

    return run


def rows(labels: dict[str, dict], templates: Path, detector: Callable[[str], str] | None) -> list[tuple[str, str, str, str, bool]]:
    """(file, expected, detected, renders-calls flag, match) for every labelled template."""
    out = []
    for rel in sorted(labels):
        label = labels[rel]
        path = templates / rel
        if not path.exists():
            detected = "missing file"
        elif detector is None:
            detected = "-"
        else:
            detected = detector(path.read_text(encoding="utf-8"))
        calls = "yes" if label["renders_tool_calls"] else "no"
        out.append((rel, label["dialect"], detected, calls, detected == label["dialect"]))
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--templates", type=Path, default=DEFAULT_TEMPLATES, help="corpus folder")
    parser.add_argument("--only-mismatches", action="store_true", help="print only rows that disagree")
    args = parser.parse_args(argv)

    labels = load_labels()
    detector = load_detector()
    table = rows(labels, args.templates, detector)
    shown = [r for r in table if not (args.only_mismatches and r[4])]

    widths = [max(len(h), *(len(r[i]) for r in shown)) if shown else len(h)
              for i, h in enumerate(("template", "expected", "detected", "calls"))]
    header = ("template", "expected", "detected", "calls")
    print("  ".join(h.ljust(w) for h, w in zip(header, widths)) + "  ok")
    for r in shown:
        mark = "" if detector is None else ("✓" if r[4] else "✗")
        print("  ".join(c.ljust(w) for c, w in zip(r[:4], widths)) + "  " + mark)

    print()
    if detector is None:
        print("detection not available (localtools.dialects.detect failed to import)")
    else:
        agree = sum(r[4] for r in table)
        print(f"detection agrees on {agree}/{len(table)} templates")
        misses = Counter((r[1], r[2]) for r in table if not r[4])
        for (exp, got), n in misses.most_common():
            print(f"  expected {exp:<18} detected {got:<18} x{n}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
