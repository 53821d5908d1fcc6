"""localtools: a local runtime for GGUF models with OpenAI-style function calling."""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["__version__"]
