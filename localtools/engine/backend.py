"""Process-wide llama.cpp plumbing: backend start-up, its log (kept for error reports),
capturing what native code prints to stderr, and small facts about llama-cpp-python."""

from __future__ import annotations

import collections
import ctypes
import logging
import os
import tempfile
import threading
from typing import Any

import llama_cpp

log = logging.getLogger("localtools.engine")

GGUF_MAGIC = b"GGUF"

_recent_log: collections.deque[str] = collections.deque(maxlen=64)
_verbose_logging = False
_backend_ready = False


def llama_cpp_version() -> str:
    """The llama-cpp-python version in use (reported by benchmarks and `inspect`)."""
    return str(getattr(llama_cpp, "__version__", "unknown"))


def baseline_llama(model_path: str, *, n_ctx: int, n_threads: int) -> Any:
    """llama-cpp-python's own high-level `Llama`, for benchmarks that compare against it.

    Lives here so that only the engine imports llama_cpp; nothing in localtools serves
    requests with it. Threads for prompt evaluation and flash attention match `Engine`'s
    defaults (its own default is flash attention off), so both sides of a comparison run
    the same way.
    """
    return llama_cpp.Llama(
        model_path, n_ctx=n_ctx, n_threads=n_threads, n_threads_batch=n_threads, flash_attn=True, verbose=False
    )


@llama_cpp.llama_log_callback
def _on_llama_log(level: int, text: bytes, user_data: ctypes.c_void_p) -> None:
    """Collects llama.cpp log lines; grammar parse errors only reach us this way."""
    try:
        line = text.decode("utf-8", errors="replace")
    except Exception:  # never let an exception cross the C boundary
        return
    _recent_log.append(line)
    if _verbose_logging:
        log.debug("llama.cpp: %s", line.rstrip())


def init_backend(verbose: bool) -> None:
    """Start llama.cpp once per process, with its log routed through `_on_llama_log`."""
    global _backend_ready, _verbose_logging
    _verbose_logging = _verbose_logging or verbose
    if _backend_ready:
        return
    llama_cpp.llama_log_set(_on_llama_log, ctypes.c_void_p(0))
    llama_cpp.llama_backend_init()
    _backend_ready = True


def log_mark() -> int:
    """A position in the recent llama.cpp log, for `log_since`."""
    return len(_recent_log)


def log_since(mark: int) -> str:
    """Log text emitted after `mark` (a length of the recent-log deque)."""
    lines = list(_recent_log)[mark:]
    return "".join(lines).strip()


class CapturedStderr:
    """Captures what native code writes to file descriptor 2 (llama.cpp's grammar parser
    reports errors with fprintf(stderr), not through the log callback)."""

    _lock = threading.Lock()

    def __enter__(self) -> CapturedStderr:
        self.text = ""
        self._lock.acquire()
        try:
            self._file = tempfile.TemporaryFile()
            self._saved = os.dup(2)
            os.dup2(self._file.fileno(), 2)
        except Exception:
            self._lock.release()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        try:
            os.dup2(self._saved, 2)
            os.close(self._saved)
            self._file.seek(0)
            self.text = self._file.read().decode("utf-8", errors="replace")
            self._file.close()
        finally:
            self._lock.release()


def check_model_file(path: str) -> None:
    """Clear errors for a missing path, a directory or a non-GGUF file, before llama.cpp sees it."""
    if not os.path.exists(path):
        raise FileNotFoundError(f"model file not found: {path}")
    if os.path.isdir(path):
        raise ValueError(f"model path is a directory, not a GGUF file: {path}")
    with open(path, "rb") as fh:
        magic = fh.read(4)
    if magic != GGUF_MAGIC:
        raise ValueError(f"not a GGUF file (bad magic {magic!r}): {path}")
