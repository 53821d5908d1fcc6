"""Detection on the whole template corpus: every labelled template in
tests/data/template_dialects.toml is detected as the dialect it speaks.

A label whose dialect is not implemented yet is an expected failure (it turns
into a real check the day the dialect is registered). Where we read a
template differently from the label, the disagreement is written down below,
with the reason, and the test checks our reading.
"""

from __future__ import annotations

import tomllib
from collections import Counter
from pathlib import Path

import pytest

from localtools import detect_dialect
from localtools.dialects import all_dialects
from tests.conftest import SHARED_TEMPLATES

LABELS_FILE = Path(__file__).resolve().parent / "data" / "template_dialects.toml"

# template -> (dialect we detect, why the label differs); empty: labels and detection agree
DISAGREEMENTS: dict[str, tuple[str, str]] = {}

# templates whose dialect module needs a change first (strict xfail until then)
OTHER_OWNERS: dict[str, str] = {}


def _labels() -> dict[str, dict]:
    if not LABELS_FILE.exists():
        return {}
    with LABELS_FILE.open("rb") as f:
        return tomllib.load(f)["templates"]


LABELS = _labels()
KNOWN = {d.name for d in all_dialects()}


def _expected(rel: str) -> str:
    return DISAGREEMENTS[rel][0] if rel in DISAGREEMENTS else LABELS[rel]["dialect"]


def _cases() -> list:
    cases = []
    for rel in sorted(LABELS):
        expected = _expected(rel)
        marks = []
        if expected not in KNOWN:
            marks.append(pytest.mark.xfail(reason=f"dialect {expected!r} not implemented", strict=True))
        elif rel in OTHER_OWNERS:
            marks.append(pytest.mark.xfail(reason=OTHER_OWNERS[rel], strict=True))
        cases.append(pytest.param(rel, expected, marks=marks, id=rel))
    return cases


pytestmark = pytest.mark.skipif(
    not LABELS or not SHARED_TEMPLATES.is_dir(), reason="template corpus or labels not available"
)


@pytest.mark.parametrize("rel,expected", _cases())
def test_template_is_detected_as_its_dialect(rel: str, expected: str) -> None:
    source = (SHARED_TEMPLATES / rel).read_text(encoding="utf-8")
    assert detect_dialect(source) == expected


def test_every_labelled_template_exists_and_disagreements_are_live() -> None:
    missing = [rel for rel in LABELS if not (SHARED_TEMPLATES / rel).exists()]
    assert not missing
    for rel, (ours, _) in DISAGREEMENTS.items():
        assert rel in LABELS, f"{rel} is no longer labelled"
        assert LABELS[rel]["dialect"] != ours, f"{rel}: the label now agrees; drop the note"


def test_summary_of_detection(capsys: pytest.CaptureFixture[str]) -> None:
    """Prints how the corpus is detected; fails if an implemented dialect steals
    or misses a template (the per-template test says which)."""
    agree, pending, wrong = 0, Counter(), []
    for rel in sorted(LABELS):
        expected = _expected(rel)
        got = detect_dialect((SHARED_TEMPLATES / rel).read_text(encoding="utf-8"))
        if got == expected:
            agree += 1
        elif expected not in KNOWN or rel in OTHER_OWNERS:
            pending[expected] += 1
        else:
            wrong.append(f"{rel}: expected {expected}, detected {got}")
    with capsys.disabled():
        print(f"\ndetection: {agree}/{len(LABELS)} templates right; "
              f"{sum(pending.values())} wait for unimplemented dialects: "
              + ", ".join(f"{k} x{v}" for k, v in pending.most_common()))
    assert not wrong, "\n".join(wrong)
