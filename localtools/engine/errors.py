"""What the engine raises; callers (scheduler, API) map these to their own errors."""

from __future__ import annotations


class ContextLengthExceeded(Exception):
    """The prompt does not fit in the context window (with room for one generated token)."""

    def __init__(self, prompt_tokens: int, n_ctx: int):
        self.prompt_tokens = prompt_tokens
        self.n_ctx = n_ctx
        super().__init__(
            f"prompt is {prompt_tokens} tokens but the context window is {n_ctx} tokens "
            f"(at least one token must be left for the reply)"
        )


class GrammarError(Exception):
    """A GBNF grammar (or its trigger patterns) failed to parse."""


class EngineError(RuntimeError):
    """llama.cpp failed while evaluating tokens."""
