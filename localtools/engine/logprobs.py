"""Log-probabilities of the sampled tokens (OpenAI's `logprobs` / `top_logprobs`).

Which distribution: the log-softmax of the model's logits at that step, over the whole
vocabulary, before temperature, top-k/top-p/min-p and penalties (so the numbers do not
depend on the sampling settings, as OpenAI's and vLLM's do not), and AFTER grammar
masking when a grammar constrains that token (tool calls under `tool_choice`
"required", `response_format`): tokens the grammar forbids get probability 0 and the
rest are renormalised, so the chosen token's logprob is what the grammar left it.
A lazy grammar still waiting for its trigger masks nothing.

Used by the decode loop in two calls per token, so it can be moved onto another loop
as is: `observe(grammar)` before sampling (the logits row of the last evaluated token),
`record(token)` after.
"""

from __future__ import annotations

import ctypes
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import llama_cpp
import numpy as np

if TYPE_CHECKING:
    from localtools.engine.core import Engine
    from localtools.engine.sampling import GrammarSampler

MAX_TOP = 20  # OpenAI's upper bound for top_logprobs


@dataclass(frozen=True)
class TokenLogprob:
    """One sampled token: its bytes, its logprob, where its bytes start in the generated
    text, and the `top` most likely tokens of that step (bytes, logprob), best first."""

    token: int
    text: bytes
    logprob: float
    offset: int
    top: tuple[tuple[bytes, float], ...]


def log_softmax(logits: np.ndarray) -> np.ndarray:
    """Natural-log probabilities of a logits row (-inf entries stay -inf)."""
    row = logits.astype(np.float64)
    peak = row.max()
    if not np.isfinite(peak):  # a grammar dead end: nothing can be sampled
        return row
    shifted = row - peak
    return shifted - np.log(np.exp(shifted).sum())


def top_alternatives(row: np.ndarray, n: int) -> np.ndarray:
    """Ids of the `n` largest entries, largest first (ties: lower id first)."""
    if n <= 0:
        return np.zeros(0, dtype=np.int64)
    n = min(n, row.shape[0])
    part = np.argpartition(-row, n - 1)[:n]
    return part[np.lexsort((part, -row[part]))]


class LogprobRecorder:
    """The logprob of each sampled token of one generation, with `top_n` alternatives."""

    def __init__(self, engine: Engine, top_n: int) -> None:
        self._engine = engine
        self._top_n = max(0, min(top_n, MAX_TOP))
        n_vocab = engine.n_vocab
        self._n_vocab = n_vocab
        self._row: np.ndarray | None = None
        self._offset = 0
        self._bytes: dict[int, bytes] = {}
        self._data: Any = None  # candidates for grammar masking, made on first need
        self._view: Any = None

    def observe(self, grammar: GrammarSampler | None, row: int = -1) -> None:
        """Take this step's distribution: call before sampling, with the grammar that
        constrains the token about to be sampled (None when none does) and the
        sequence's logits row in the last batch (several sequences share a batch)."""
        ptr = llama_cpp.llama_get_logits_ith(self._engine.ctx, row)
        logits = np.ctypeslib.as_array(ptr, shape=(self._n_vocab,))
        if grammar is not None:
            logits = self._masked(logits, grammar)
        self._row = log_softmax(logits)

    def record(self, token: int) -> TokenLogprob:
        """The entry for the token sampled after `observe`."""
        row = self._row
        assert row is not None, "observe() comes before record()"
        text = self._token_bytes(token)
        top = tuple(
            (self._token_bytes(int(t)), float(row[t]))
            for t in top_alternatives(row, self._top_n)
            if np.isfinite(row[t])  # fewer than top_n when a grammar allows fewer
        )
        entry = TokenLogprob(token, text, float(row[token]), self._offset, top)
        self._offset += len(text)
        self._row = None
        return entry

    def _masked(self, logits: np.ndarray, grammar: GrammarSampler) -> np.ndarray:
        """The logits with what the grammar forbids at -inf (the grammar's state is unchanged)."""
        if self._data is None:
            self._data = (llama_cpp.llama_token_data * self._n_vocab)()
            self._view = np.frombuffer(
                self._data, dtype=np.dtype([("id", np.int32), ("logit", np.float32), ("p", np.float32)])
            )
        view = self._view
        view["id"] = np.arange(self._n_vocab, dtype=np.int32)
        view["logit"] = logits
        view["p"] = 0.0
        arr = llama_cpp.llama_token_data_array(data=self._data, size=self._n_vocab, selected=-1, sorted=False)
        llama_cpp.llama_sampler_apply(grammar.smpl, ctypes.byref(arr))
        out = np.full(self._n_vocab, -np.inf, dtype=np.float32)
        size = arr.size
        out[view["id"][:size]] = view["logit"][:size]
        return out

    def _token_bytes(self, token: int) -> bytes:
        cached = self._bytes.get(token)
        if cached is None:
            buf = ctypes.create_string_buffer(256)
            n = llama_cpp.llama_token_to_piece(self._engine.vocab, token, buf, 256, 0, True)
            if n > 256:
                buf = ctypes.create_string_buffer(n)
                n = llama_cpp.llama_token_to_piece(self._engine.vocab, token, buf, n, 0, True)
            cached = buf.raw[: max(n, 0)]
            self._bytes[token] = cached
        return cached
