"""Arrow keys and a persistent input history for `localtools chat`, where readline exists."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any


def enable_line_editing() -> None:
    """Arrow keys and a persistent history, where readline exists."""
    try:
        import atexit
        import readline
    except ImportError:  # Windows without pyreadline
        return
    state = Path(os.environ.get("XDG_STATE_HOME", Path.home() / ".local" / "state")) / "localtools"
    history = state / "chat_history"
    try:
        state.mkdir(parents=True, exist_ok=True)
        if history.exists():
            readline.read_history_file(history)
    except OSError:
        return
    readline.set_history_length(1000)
    atexit.register(lambda: _save_history(readline, history))


def _save_history(readline: Any, history: Path) -> None:
    try:
        readline.write_history_file(history)
    except OSError:
        pass
