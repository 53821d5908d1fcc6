"""`localtools serve` with several models: the pool built from the command line's choices."""

from __future__ import annotations

from pathlib import Path

from localtools.catalog import DEFAULT_MODEL
from localtools.registry.pool import ModelPool
from localtools.registry.specs import LoadOptions, served_models

__all__ = ["LoadOptions", "build_pool"]

def build_pool(sources: list[str], models_file: Path | None, defaults: LoadOptions,
               max_loaded: int | None, idle_unload_s: float | None, max_memory: int | None = None,
               engine_api_key: str | None = None) -> ModelPool:
    """The pool serving `sources` then the models file's tables (raises ValueError,
    naming the file and table, for what cannot be served as given)."""
    if not sources and models_file is None:
        sources = [DEFAULT_MODEL]  # only pool flags given: the default model
    if max_loaded is not None and max_loaded < 1:
        raise ValueError("--max-loaded must be at least 1")
    if idle_unload_s is not None and idle_unload_s <= 0:
        raise ValueError("--idle-unload must be a positive number of seconds")
    return ModelPool(served_models(sources, models_file, defaults, api_key=engine_api_key), max_loaded=max_loaded,
                     idle_unload_s=idle_unload_s, max_memory=max_memory)
