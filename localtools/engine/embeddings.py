"""Embeddings: a second llama context on the engine's loaded model, with embeddings on.

Why a separate context: the generation context keeps its KV cache (prefix reuse) and
its sampler set-up; an embedding context is cleared before every batch, outputs pooled
hidden states instead of logits, and can run beside a generation (the weights are
shared, the contexts are not). It is made on first use, so a server that never embeds
pays nothing.

Pooling is the GGUF's (`{arch}.pooling_type`: mean, cls, last). A chat model declares
none (llama.cpp would return one vector per token): it gets mean pooling, the same
vector llama-cpp-python's `Llama(embedding=True, pooling_type=MEAN).embed` gives.
Vectors are L2-normalised, as OpenAI's are.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

import llama_cpp
import numpy as np

from localtools.engine.errors import EngineError
from localtools.engine.threads import default_threads

if TYPE_CHECKING:
    from localtools.engine.core import Engine

EMBED_MAX_CTX = 2048  # tokens per input (and per batch): bounds the compute buffer
EMBED_MAX_SEQS = 16  # inputs packed into one llama_decode
POOLING_NAMES = {
    llama_cpp.LLAMA_POOLING_TYPE_MEAN: "mean",
    llama_cpp.LLAMA_POOLING_TYPE_CLS: "cls",
    llama_cpp.LLAMA_POOLING_TYPE_LAST: "last",
}


class EmbeddingInputError(ValueError):
    """An input this model cannot embed (empty, too long, a token id outside the vocabulary)."""

    def __init__(self, message: str, index: int) -> None:
        super().__init__(message)
        self.index = index


def _embedding_context(engine: Engine, pooling: int) -> Any:
    cparams = llama_cpp.llama_context_default_params()
    n_ctx = min(engine.n_ctx, EMBED_MAX_CTX)
    cparams.n_ctx = n_ctx
    cparams.n_batch = n_ctx
    cparams.n_ubatch = n_ctx  # a non-causal (BERT-like) model needs a whole input in one ubatch
    cparams.n_seq_max = EMBED_MAX_SEQS
    cparams.kv_unified = True  # the inputs of one batch share the n_ctx cells
    cparams.embeddings = True
    cparams.pooling_type = pooling
    threads = engine.config.n_threads or default_threads()  # as the engine's
    cparams.n_threads = threads
    cparams.n_threads_batch = engine.config.n_threads_batch or threads
    cparams.no_perf = True
    if engine.config.n_gpu_layers == 0:
        # flash attention off on CPU, whatever the generation context uses: several inputs
        # share one batch here, and its kernels' paths depend on the batch's shape
        cparams.flash_attn_type = llama_cpp.LLAMA_FLASH_ATTN_TYPE_DISABLED
    ctx = llama_cpp.llama_init_from_model(engine._model, cparams)  # the engine's own model handle
    if not ctx:
        raise EngineError(f"llama.cpp could not create an embedding context (n_ctx={n_ctx})")
    return ctx


class Embedder:
    """Pooled, normalised embeddings of token lists, many inputs per llama_decode."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._lock = threading.Lock()
        ctx = _embedding_context(engine, llama_cpp.LLAMA_POOLING_TYPE_UNSPECIFIED)
        declared = llama_cpp.llama_pooling_type(ctx)
        if declared == llama_cpp.LLAMA_POOLING_TYPE_RANK:
            llama_cpp.llama_free(ctx)
            raise EngineError("this model is a reranker (rank pooling): it gives scores, not embeddings")
        if declared not in POOLING_NAMES:  # NONE: a chat/causal model without a pooling layer
            llama_cpp.llama_free(ctx)
            ctx = _embedding_context(engine, llama_cpp.LLAMA_POOLING_TYPE_MEAN)
        self._ctx = ctx
        self.pooling = POOLING_NAMES[llama_cpp.llama_pooling_type(ctx)]
        self.pooling_declared = declared in POOLING_NAMES
        self.n_ctx = llama_cpp.llama_n_ctx(ctx)
        self.n_embd = llama_cpp.llama_model_n_embd(engine._model)
        self._memory = llama_cpp.llama_get_memory(ctx)
        self._batch = llama_cpp.llama_batch_init(self.n_ctx, 0, EMBED_MAX_SEQS)

    def close(self) -> None:
        """Free the context (before the engine frees the model; idempotent)."""
        with self._lock:
            if self._batch is not None:
                llama_cpp.llama_batch_free(self._batch)
                self._batch = None
            if self._ctx:
                llama_cpp.llama_free(self._ctx)
                self._ctx = None

    def tokenize(self, text: str) -> list[int]:
        """The tokens embedded for `text`: the model's special tokens (BOS, a BERT's
        CLS/SEP) added, text that looks like a control token kept as text."""
        return self._engine.tokenize(text, add_bos=True, special=False)

    def check(self, inputs: list[list[int]]) -> None:
        """EmbeddingInputError for an empty, too long or out-of-vocabulary input."""
        n_vocab = self._engine.n_vocab
        for i, tokens in enumerate(inputs):
            if not tokens:
                raise EmbeddingInputError("the input is empty", i)
            if len(tokens) > self.n_ctx:
                raise EmbeddingInputError(
                    f"the input is {len(tokens)} tokens; this model embeds at most {self.n_ctx}", i
                )
            bad = next((t for t in tokens if not 0 <= t < n_vocab), None)
            if bad is not None:
                raise EmbeddingInputError(f"token id {bad} is outside the vocabulary (0..{n_vocab - 1})", i)

    def embed(self, inputs: list[list[int]]) -> np.ndarray:
        """One L2-normalised float32 row per input (raises EmbeddingInputError first)."""
        self.check(inputs)
        out = np.zeros((len(inputs), self.n_embd), dtype=np.float32)
        with self._lock:
            if not self._ctx:
                raise EngineError("the embedding context is closed")
            group: list[int] = []
            used = 0
            for i, tokens in enumerate(inputs):
                if group and (used + len(tokens) > self.n_ctx or len(group) >= EMBED_MAX_SEQS):
                    self._decode_group(inputs, group, out)
                    group, used = [], 0
                group.append(i)
                used += len(tokens)
            if group:
                self._decode_group(inputs, group, out)
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        return out / np.where(norms > 0, norms, 1.0)

    def _decode_group(self, inputs: list[list[int]], group: list[int], out: np.ndarray) -> None:
        """Evaluate the inputs `group` in one batch, one sequence each; their pooled rows into `out`."""
        batch = self._batch
        n = 0
        for seq, i in enumerate(group):
            for pos, tok in enumerate(inputs[i]):
                batch.token[n] = tok
                batch.pos[n] = pos
                batch.n_seq_id[n] = 1
                batch.seq_id[n][0] = seq
                batch.logits[n] = 1  # embeddings mode outputs every token (then pools)
                n += 1
        batch.n_tokens = n
        llama_cpp.llama_memory_clear(self._memory, True)
        if self._engine.threads.active:  # as many threads as the engine uses now (threads.py)
            llama_cpp.llama_set_n_threads(self._ctx, *self._engine.thread_counts())
        rc = llama_cpp.llama_decode(self._ctx, batch)
        if rc != 0:
            raise EngineError(f"llama_decode failed with code {rc} while embedding")
        for seq, i in enumerate(group):
            ptr = llama_cpp.llama_get_embeddings_seq(self._ctx, seq)
            if not ptr:
                raise EngineError("llama.cpp returned no pooled embedding")
            out[i] = np.ctypeslib.as_array(ptr, shape=(self.n_embd,))
