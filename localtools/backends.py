"""Where tokens come from: the one interface between the service and a token source.

`service.py` renders the prompt, builds the grammar and parses the text; everything
below that seam only turns (prompt, SamplingParams) into text pieces. Two kinds serve
it: the in-process `Scheduler` over llama-cpp-python (the default) and
`localtools.remote.RemoteBackend` (llama-server / vLLM over HTTP). Nothing above the
seam knows which one it talks to.

What crosses the seam, both ways:

- in: the prompt text (or token ids, for fill-in-the-middle); `SamplingParams` (sampling, max_tokens, stop strings, and a
  `gbnf.Grammar`: GBNF text, lazy or not, with its trigger patterns);
- out: a handle that yields text pieces (sync or async), can be cancelled, and fills
  `GenerationStats` (prompt / cached / completion token counts, finish reason);
- errors: `ContextLengthExceeded`, `GrammarError` (the request's fault), `QueueFull`
  (busy), `BackendUnavailable` (no engine could serve it), raised by the iteration.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Protocol, runtime_checkable

from localtools.engine.types import GenerationStats, SamplingParams


class BackendUnavailable(RuntimeError):
    """No engine could serve the request: every upstream failed before its first token,
    or the one serving it died mid-stream. `retry_after` is a hint in seconds."""

    def __init__(self, message: str, retry_after: float = 1.0):
        super().__init__(message)
        self.retry_after = retry_after


class Generation(Protocol):
    """One submitted generation (`scheduler.GenerationHandle` is the reference one)."""

    prompt: str | list[int]
    params: SamplingParams
    stats: GenerationStats

    def cancel(self) -> None: ...

    @property
    def done(self) -> bool: ...

    def wait(self, timeout: float | None = None) -> bool: ...

    def __iter__(self) -> Iterator[str]: ...

    def __aiter__(self) -> AsyncIterator[str]: ...

    def text(self) -> str: ...


@runtime_checkable
class GenerationBackend(Protocol):
    """A token source: submit a prompt, get pieces; report load; shut down."""

    def submit(self, prompt: str | list[int], params: SamplingParams) -> Generation:
        """Start (or queue) a generation; raises QueueFull when too many wait."""
        ...

    def queue_depth(self) -> int:
        """Requests waiting to start (for /health and 429 decisions)."""
        ...

    @property
    def busy(self) -> bool:
        """Whether anything is generating now."""
        ...

    def close(self, cancel_running: bool = True, timeout: float | None = 30.0) -> None:
        """Stop accepting work; cancel what waits (and what runs)."""
        ...
