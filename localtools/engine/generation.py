"""One generation's state machine: evaluate the prompt in chunks, then sample, check,
emit and evaluate one token at a time until a stop, the budget or a cancel.

A `Generation` does not call llama.cpp's decode itself: the engine's step
(`engine/batch.py`) evaluates what every active generation asks for (`prefill_chunk`,
`pending`) and hands each its logits row (`on_logits`), so several generations advance
side by side in one context, each in its own sequence slot.
"""

from __future__ import annotations

import codecs
import logging
import re
import threading
import time
from typing import TYPE_CHECKING, Any

import llama_cpp

from localtools.engine.kv_cache import SlotCache
from localtools.engine.logprobs import LogprobRecorder
from localtools.engine.sampling import GrammarSampler, seed_for
from localtools.engine.stops import TRIGGER_LOOKBACK, StopFilter, trigger_start
from localtools.engine.types import GenerationStats, SamplingParams

if TYPE_CHECKING:
    from localtools.engine.core import Engine

log = logging.getLogger(__name__)


class Generation:
    """The state of one request from prompt evaluation to its last piece of text."""

    def __init__(
        self,
        engine: Engine,
        slot: SlotCache,
        tokens: list[int],
        params: SamplingParams,
        chain: Any,
        grammar: GrammarSampler | None,
        triggers: list[re.Pattern[str]] | None,
        cancel: threading.Event | None,
        stats: GenerationStats,
        t0: float,
        forced: int = 0,
    ):
        self.engine = engine
        self.slot = slot
        self.tokens = tokens
        self.chain = chain
        self.grammar = grammar
        self.triggers = triggers
        self.cancel = cancel
        self.stats = stats
        self.t0 = t0  # when the request started (time to first token counts from here)
        self.t1 = t0  # when decoding started
        # the last `forced` tokens are the grammar's forced start of the reply, evaluated
        # with the prompt and emitted once it is in (sampling.jump_forward)
        self.n_forced = forced
        self.chunk = slot.chunk_for(len(tokens))  # the prompt's smallest chunk (kv_cache.chunk_class)
        budget = engine.n_ctx - len(tokens) + forced  # room left in this slot's context window
        if params.max_tokens is not None:
            budget = min(budget, max(params.max_tokens, 0))
        self.budget = budget
        self.stops = StopFilter(params.stop)
        # constrained: grammar active now; awaiting: lazy grammar waiting for its trigger
        self.constrained = grammar is not None and triggers is None
        self.awaiting = grammar is not None and triggers is not None
        self.generated = ""  # all generated text, kept only while awaiting a trigger
        self.decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self.n_gen = 0
        self.finish = "length"
        self.prefill_at = 0  # next prompt token to evaluate
        self.pending: list[int] = []  # sampled token(s) to evaluate in the next step
        self.pos = len(tokens)  # KV position of the next generated token
        self.row = -1  # this sequence's logits row in the last evaluated batch
        self.out: list[str] = []  # text pieces produced, drained by the caller
        self.done = False
        self.logprobs = LogprobRecorder(engine, params.logprobs) if params.logprobs is not None else None
        self.first_bias = params.first_token_bias if params.first_token_bias and params.first_token_bias[1] else None
        # greedy, or a fixed seed: the same request should give the same reply (README,
        # "Reproducible output"), so the thread count holds still under it (batch.py)
        self.reproducible = params.temperature <= 0 or seed_for(params, engine.config.seed) != llama_cpp.LLAMA_DEFAULT_SEED
        self.error: BaseException | None = None  # set when evaluation failed

    def free(self) -> None:
        """Release the native samplers (idempotent)."""
        if self.chain is not None:
            llama_cpp.llama_sampler_free(self.chain)
            self.chain = None
        if self.grammar is not None:
            self.grammar.free()

    # ---- prompt ------------------------------------------------------------

    def start(self) -> None:
        """Reuse what the slot's cache shares with the prompt (and saved states)."""
        slot, tokens = self.slot, self.tokens
        slot.switch_state(tokens)
        reused = slot.reuse_prefix(tokens)
        self._count_prompt(reused)
        self.prefill_at = reused
        if self.budget <= 0:
            self._end()

    def skip_prefix(self, n: int) -> None:
        """The slot now holds the first `n` prompt tokens (copied from another slot)."""
        self.prefill_at = n
        self._count_prompt(n)

    def _count_prompt(self, reused: int) -> None:
        """Prompt tokens cached and to evaluate (forced tokens count as generated ones)."""
        n_prompt = len(self.tokens) - self.n_forced
        self.stats.cached_tokens = min(reused, n_prompt)
        self.stats.prompt_eval_tokens = n_prompt - self.stats.cached_tokens

    @property
    def prefilling(self) -> bool:
        return not self.done and self.prefill_at < len(self.tokens)

    def prefill_chunk(self, limit: int) -> list[int]:
        """The next prompt chunk, at most `limit` tokens, never fewer than the prompt's
        chunk class (nor leaving fewer) unless that is the whole prompt: smaller chunks
        change the numerics (kv_cache's reproducibility rule)."""
        left = len(self.tokens) - self.prefill_at
        smallest = min(self.chunk, limit)
        if left <= limit:
            return self.tokens[self.prefill_at :]
        n = min(limit, left - smallest)  # leave at least `smallest` for the next chunk
        if n < smallest:
            return []  # not enough room in this step
        return self.tokens[self.prefill_at : self.prefill_at + n]

    def prefilled(self, n: int, row: int) -> None:
        """`n` prompt tokens were evaluated; `row` holds logits when it was the last chunk."""
        self.slot.extend(self.tokens[self.prefill_at : self.prefill_at + n], exact=n >= self.chunk, chunk=self.chunk)
        self.prefill_at += n
        if self.prefill_at >= len(self.tokens):
            self.t1 = time.perf_counter()
            self.stats.prompt_seconds = self.t1 - self.t0
            if self.n_forced and not self._emit_forced():
                return
            self.on_logits(row)

    def _emit_forced(self) -> bool:
        """Emit the forced start as generated text; False when that ended the reply."""
        pieces = [self.engine.piece(tok) or b"" for tok in self.tokens[-self.n_forced:]]
        self.n_gen += self.n_forced
        self.stats.completion_tokens = self.n_gen
        out, stopped = self.stops.feed(self.decoder.decode(b"".join(pieces)))
        if out:
            self._emit(out)
        if stopped:
            self.finish = "stop"
        if stopped or self.n_gen >= self.budget:
            self._end()
            return False
        return True

    # ---- one generated token --------------------------------------------------

    def on_logits(self, row: int) -> None:
        """Sample from `row`, emit its text, and queue it for evaluation (or finish)."""
        self.row = row
        if self.cancel is not None and self.cancel.is_set():
            self.finish = "cancelled"
            self._end()
            return
        if self.logprobs is not None:  # the distribution the token is sampled from
            self.logprobs.observe(self.grammar if self.constrained else None, row)
        if self.n_gen == 0 and self.first_bias is not None:
            self._lean(row, *self.first_bias)
        tok = self._sample()
        if tok is None:
            self._end()
            return
        piece = self.engine.piece(tok)
        if piece is None:  # end of generation
            self.finish = "stop"
            self._end()
            return
        self.n_gen += 1
        if self.logprobs is not None:
            self.stats.logprobs.append(self.logprobs.record(tok))
        text = self.decoder.decode(piece)
        to_eval: tuple[int, ...] = (tok,)
        if self.awaiting and text:
            text, to_eval = self._check_trigger(text, to_eval)
        self.stats.completion_tokens = self.n_gen
        if text:
            out, stopped = self.stops.feed(text)
            if out:
                self._emit(out)
            if stopped:
                self.finish = "stop"
                self._end()
                return
        if self.n_gen >= self.budget or self.pos + len(to_eval) > self.engine.n_ctx:
            self._end()
            return
        self._queue_eval(list(to_eval))

    def _queue_eval(self, tokens: list[int]) -> None:
        if not tokens:
            # the grammar took back the whole latest token: evaluate the one before it
            # again so that fresh logits exist for the next sample
            self.pos -= 1
            tokens = [self.slot.tokens[self.pos]]
            self.slot.truncate(self.pos)
        self.pending = tokens

    def evaluated(self, row: int) -> None:
        """The pending tokens were evaluated; `row` holds the logits after them."""
        self.slot.extend(self.pending, exact=False)
        self.pos += len(self.pending)
        self.pending = []
        self.on_logits(row)

    def abort(self, finish: str) -> None:
        """Stop now (cancelled, or the engine failed)."""
        if not self.done:
            self.finish = finish
            self._end()

    def _end(self) -> None:
        if self.done:
            return
        self.done = True
        self.pending = []
        if self.finish != "cancelled":
            tail = self._final_text()
            if tail:
                self._emit(tail)
        st = self.stats
        st.finish_reason = self.finish
        st.completion_tokens = self.n_gen
        st.decode_seconds = time.perf_counter() - self.t1
        if self.prefill_at < len(self.tokens):
            st.prompt_seconds = time.perf_counter() - self.t0

    def _emit(self, text: str) -> None:
        if self.stats.first_token_seconds is None:
            self.stats.first_token_seconds = time.perf_counter() - self.t0
        self.out.append(text)

    def logits(self) -> Any:
        """A copy of the logits the latest token was sampled from (numpy float32 array),
        valid until the next `llama_decode` (a step holds one for the decoding sequences
        and one for a prompt chunk); for checks of numerics."""
        import numpy as np

        ptr = llama_cpp.llama_get_logits_ith(self.engine.ctx, self.row)
        return np.ctypeslib.as_array(ptr, shape=(self.engine.n_vocab,)).copy()

    def drain(self) -> list[str]:
        """The pieces produced since the last drain."""
        out, self.out = self.out, []
        return out

    # ---- one step's parts ---------------------------------------------------

    def _sample(self) -> int | None:
        """The next token (None: the grammar admits none; the generation stops)."""
        if not self.constrained:
            return llama_cpp.llama_sampler_sample(self.chain, self.engine.ctx, self.row)
        tok = self.grammar.sample(self.chain, self.row)  # type: ignore[union-attr]
        if tok is None:
            log.warning("grammar admits no token here; stopping generation")
            self.finish = "stop"
        return tok

    def _lean(self, row: int, text: str, bias: float) -> None:
        """Add `bias` to the logits (in place, this row only) of the tokens that can begin `text`."""
        logits = llama_cpp.llama_get_logits_ith(self.engine.ctx, row)
        for tok in self.engine.tokens_opening(text):
            logits[tok] += bias

    def _check_trigger(self, text: str, to_eval: tuple[int, ...]) -> tuple[str, tuple[int, ...]]:
        """Arm a lazy grammar when its trigger appears in the text so far.

        Returns the text to emit and the tokens to evaluate for this step: when the
        sampled token ran past what the grammar accepts, only the accepted part is kept
        and re-tokenized.
        """
        start = len(self.generated)
        self.generated += text
        where = trigger_start(self.triggers, self.generated, max(0, start - TRIGGER_LOOKBACK))  # type: ignore[arg-type]
        if where < 0:
            return text, to_eval
        self.awaiting = False
        armed = self.grammar.arm(self.generated, where, start)  # type: ignore[union-attr]
        if armed is None:
            log.warning("lazy grammar rejected its own trigger text; continuing unconstrained")
        else:
            self.constrained = True
            kept_text, replacement = armed
            if replacement is not None:  # the sampled token ran past the grammar
                text = kept_text
                to_eval = tuple(replacement)
                self.n_gen += len(replacement) - 1
                self.decoder.reset()
        self.generated = ""
        return text, to_eval

    def _final_text(self) -> str:
        """Text still held (a possible stop string's start, undecoded bytes) at the end."""
        tail = self.decoder.decode(b"", True)
        if self.finish == "stop":
            return ""
        rest, stopped = self.stops.flush(tail)
        if stopped:
            self.finish = "stop"
        return rest

