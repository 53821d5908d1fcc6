"""Resolution policy: which file, chat templates and dialect a model is served with.

Above `dialects` and `analysis` (it uses both; neither imports it):
  templates.py  which template sources (file / catalog / GGUF / fallback), and their vetting
  dialect.py    which dialect serves a template (forced, pinned, module, analysis, fallback)
  model.py      `resolve_model`: the one decision serve, chat, inspect and LocalModel share
"""

from localtools.resolution.dialect import (
    ANALYSIS,
    FALLBACK,
    FORCED,
    MODULE,
    PINNED_SPEC,
    Resolution,
    dialect_from_spec,
    resolve_dialect,
)
from localtools.resolution.model import ModelChoice, ModelLocation, locate_model, resolve_model
from localtools.resolution.templates import FALLBACK_TEMPLATE, ModelNotFound, RuntimeLoadError

__all__ = [
    "ANALYSIS",
    "FALLBACK",
    "FALLBACK_TEMPLATE",
    "FORCED",
    "MODULE",
    "PINNED_SPEC",
    "ModelChoice",
    "ModelLocation",
    "ModelNotFound",
    "Resolution",
    "RuntimeLoadError",
    "dialect_from_spec",
    "locate_model",
    "resolve_dialect",
    "resolve_model",
]
