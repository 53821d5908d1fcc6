"""One step of continuous batching: evaluate what every active generation asks for.

A step is one `llama_decode` holding the next token of every decoding sequence (one
weight read for all of them), then, when a prompt waits, one chunk of it (chunked
prefill: a long new prompt costs the others one chunk of latency per step, not its
whole evaluation).

Which prompt, and how much of it: the one with the fewest tokens left, less a credit for
the time it has waited (shortest-first gives the lowest mean time to first token; the
credit means a long prompt is never starved by a stream of short ones). A chunk is as
many tokens as this machine evaluates in `CHUNK_SECONDS` (measured on the chunks before),
at least `MIN_CHUNK`, at most the batch: the pause it puts in the other streams, and the
wait of a request arriving while it runs, stay near that, whatever the hardware. On the
2-core CPU (SmolLM2-135M, ~2 ms a prompt token) that is 128 tokens: a 510-token prompt
alone took 1.12 s in chunks of 128 and 1.08 s in one chunk of 512 (median of 6), while a
short request sent 30 ms after a ~600-token one got its first token after 0.33 s instead
of 1.34 (through `serve`, median of 8; the long one's came after 1.43 s instead of 1.33).

Why the prompt chunk is its own `llama_decode` call rather than part of the decode
batch: the context keeps one KV stream per sequence (`kv_unified = false`, see
core.py), and llama.cpp then cuts every batch into micro-batches with the *same* number
of tokens per sequence. A prompt chunk sharing a batch with 1-token decodes would be
cut into a 1-token piece plus the rest — the same two graph evaluations as two calls,
but the 1-token piece would change the prompt's numerics (kv_cache's reproducibility
rule). Two calls give the same work with the prompt evaluated as one chunk.
"""

from __future__ import annotations

import statistics
import time
from collections import deque
from collections.abc import Callable
from contextlib import nullcontext
from typing import TYPE_CHECKING, Any

import llama_cpp

from localtools.engine.errors import EngineError

if TYPE_CHECKING:
    from localtools.engine.generation import Generation
    from localtools.engine.threads import ThreadGovernor


CHUNK_SECONDS = 0.25  # the time a prompt chunk may take, judged by the chunks before
MIN_CHUNK = 128  # twice kv_cache's FLASH_MIN_CHUNK: any long prompt can be cut in 64+ pieces
WAIT_CREDIT = 256  # tokens of priority a waiting prompt gains per second waited
TIMED_CHUNKS = 8  # prompt chunks whose speed sets the chunk size (their median)


def next_prompt(waiting: list[Generation], now: float) -> Generation:
    """The waiting prompt to evaluate next: fewest tokens left, less its waiting credit."""
    return min(waiting, key=lambda g: (len(g.tokens) - g.prefill_at) - WAIT_CREDIT * (now - g.t0))


class BatchStepper:
    """Owns the llama_batch buffer and runs steps over a set of generations."""

    def __init__(
        self,
        ctx: Any,
        n_batch: int,
        threads: ThreadGovernor | None = None,
        before_prefill: Callable[[Generation], None] | None = None,
        split_from: int | None = None,
    ):
        self._ctx = ctx
        self.n_batch = n_batch
        self._threads = threads
        # the KV position from which one token alone is summed in thread-sized parts
        # (kv_cache.FLASH_SPLIT_FROM), None where the thread count never changes a sum
        self._split_from = split_from
        self._before_prefill = before_prefill  # may let a prompt start from another slot
        self._batch = llama_cpp.llama_batch_init(n_batch, 0, 1)
        self._prompt_speed: deque[float] = deque(maxlen=TIMED_CHUNKS)  # seconds per prompt token

    def chunk_limit(self) -> int:
        """Prompt tokens in the next chunk: what fits in CHUNK_SECONDS at the measured
        speed, within [MIN_CHUNK, n_batch]; MIN_CHUNK before any chunk was timed."""
        if not self._prompt_speed:
            return min(self.n_batch, MIN_CHUNK)
        fits = int(CHUNK_SECONDS / max(statistics.median(self._prompt_speed), 1e-6))
        return min(self.n_batch, max(MIN_CHUNK, fits))

    def free(self) -> None:
        if self._batch is not None:
            llama_cpp.llama_batch_free(self._batch)
            self._batch = None

    def step(self, gens: list[Generation]) -> int:
        """Advance every generation once; returns the number of tokens evaluated.

        A generation whose evaluation fails gets `error` set and is ended; the others go on.
        """
        decoding = [g for g in gens if g.pending and not g.done]
        evaluated = self._decode_step(decoding)
        waiting = [g for g in gens if g.prefilling]
        if waiting:
            evaluated += self._prefill_step(next_prompt(waiting, time.perf_counter()), self.chunk_limit())
        return evaluated

    def _decode_step(self, decoding: list[Generation]) -> int:
        if not decoding:
            return 0
        decoding.sort(key=lambda g: g.slot.seq_id)  # llama.cpp packs consecutive ids together
        batch, n = self._batch, 0
        placed: list[tuple[Generation, int]] = []
        for gen in decoding:
            toks = gen.pending
            if n + len(toks) > self.n_batch:
                break  # the rest go in the next step
            for i, tok in enumerate(toks):
                self._put(n + i, tok, gen.pos + i, gen.slot.seq_id, i == len(toks) - 1)
            n += len(toks)
            placed.append((gen, n - 1))
        batch.n_tokens = n
        if self._threads is not None and n == 1 and self._depends_on_threads(placed[0][0]):
            self._threads.hold()
        t0 = time.perf_counter()
        if not self._decode([g for g, _ in placed]):
            return 0
        if self._threads is not None and n == len(placed):  # one token per sequence
            self._threads.observe(n, time.perf_counter() - t0)
        for gen, row in placed:
            gen.evaluated(row)
        return n

    def _depends_on_threads(self, gen: Generation) -> bool:
        """Whether `gen`'s token, decoded alone, gets sums that depend on the thread
        count while its request asked for reproducible output."""
        return self._split_from is not None and gen.pos >= self._split_from and gen.reproducible

    def _prefill_step(self, gen: Generation, limit: int) -> int:
        if self._before_prefill is not None:
            self._before_prefill(gen)
        chunk = gen.prefill_chunk(limit)
        if not chunk:
            return 0
        last = gen.prefill_at + len(chunk) == len(gen.tokens)
        for i, tok in enumerate(chunk):
            self._put(i, tok, gen.prefill_at + i, gen.slot.seq_id, last and i == len(chunk) - 1)
        self._batch.n_tokens = len(chunk)
        t0 = time.perf_counter()
        with self._threads.prompt_chunk() if self._threads is not None else nullcontext():
            ok = self._decode([gen])
        if not ok:
            return 0
        took = time.perf_counter() - t0
        if len(chunk) >= 16:  # short chunks time mostly overhead
            self._prompt_speed.append(took / len(chunk))
            if self._threads is not None:
                self._threads.observe_prefill(len(chunk), took)
        gen.prefilled(len(chunk), len(chunk) - 1)
        return len(chunk)

    def time_one_token(self, seq_id: int, token: int) -> float:
        """Seconds to decode `token` alone at position 0 of sequence `seq_id` (then
        forgotten): the thread governor's calibration, before the slot is used."""
        self._put(0, token, 0, seq_id, True)
        self._batch.n_tokens = 1
        t0 = time.perf_counter()
        llama_cpp.llama_decode(self._ctx, self._batch)
        took = time.perf_counter() - t0
        llama_cpp.llama_memory_seq_rm(llama_cpp.llama_get_memory(self._ctx), seq_id, -1, -1)
        return took

    def _put(self, i: int, token: int, pos: int, seq_id: int, logits: bool) -> None:
        batch = self._batch
        batch.token[i] = token
        batch.pos[i] = pos
        batch.n_seq_id[i] = 1
        batch.seq_id[i][0] = seq_id
        batch.logits[i] = 1 if logits else 0

    def _decode(self, gens: list[Generation]) -> bool:
        rc = llama_cpp.llama_decode(self._ctx, self._batch)
        if rc == 0:
            return True
        # the contents of these sequences are uncertain now: start them over
        for gen in gens:
            gen.slot.clear()
            gen.error = EngineError(f"llama_decode failed with code {rc}")
            gen.abort("error")
        return False
