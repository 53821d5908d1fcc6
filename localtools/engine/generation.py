"""One generation's decoding loop: evaluate the prompt, then sample, check, emit and
evaluate one token at a time until a stop, the budget or a cancel.

All per-generation state lives on a `Generation` object (not in the locals of one long
function), so several can later be stepped side by side in one context.
"""

from __future__ import annotations

import codecs
import logging
import re
import threading
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import llama_cpp

from localtools.engine.logprobs import LogprobRecorder
from localtools.engine.sampling import GrammarSampler
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
        tokens: list[int],
        params: SamplingParams,
        chain: Any,
        grammar: GrammarSampler | None,
        triggers: list[re.Pattern[str]] | None,
        cancel: threading.Event | None,
        stats: GenerationStats,
        t0: float,
    ):
        self.engine = engine
        self.tokens = tokens
        self.chain = chain
        self.grammar = grammar
        self.triggers = triggers
        self.cancel = cancel
        self.stats = stats
        self.t0 = t0  # when the request started (time to first token counts from here)
        self.t1 = t0  # when decoding started
        budget = engine.n_ctx - len(tokens)  # room left in the context window
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
        self.pos = len(tokens)  # KV position of the next token to evaluate
        self.logprobs = LogprobRecorder(engine, params.logprobs) if params.logprobs is not None else None

    def free(self) -> None:
        """Release the native samplers (idempotent)."""
        if self.chain is not None:
            llama_cpp.llama_sampler_free(self.chain)
            self.chain = None
        if self.grammar is not None:
            self.grammar.free()

    # ---- the run ---------------------------------------------------------

    def run(self) -> Iterator[str]:
        """Yields text pieces; `stats` is updated as it goes and final at the end."""
        if not self._eval_prompt():
            return
        st = self.stats
        try:
            yield from self._decode_loop()
            tail = self._final_text()
            if tail:
                self._mark_first_token()
                yield tail
            st.finish_reason = self.finish
        finally:
            st.completion_tokens = self.n_gen
            st.decode_seconds = time.perf_counter() - self.t1

    def _eval_prompt(self) -> bool:
        """Reuse what the KV cache shares with the prompt and evaluate the rest
        (False: cancelled between batches)."""
        engine, st, tokens = self.engine, self.stats, self.tokens
        engine.kv.switch_state(tokens)
        reused = engine.kv.reuse_prefix(tokens)
        st.cached_tokens = reused
        st.prompt_eval_tokens = len(tokens) - reused
        if not engine.decode(tokens[reused:], reused, self.cancel):
            st.finish_reason = "cancelled"
            st.prompt_seconds = time.perf_counter() - self.t0
            return False
        self.t1 = time.perf_counter()
        st.prompt_seconds = self.t1 - self.t0
        return True

    def _decode_loop(self) -> Iterator[str]:
        cancel = self.cancel
        while self.n_gen < self.budget:
            if cancel is not None and cancel.is_set():
                self.finish = "cancelled"
                break
            if self.logprobs is not None:  # the distribution the token is sampled from
                self.logprobs.observe(self.grammar if self.constrained else None)
            tok = self._sample()
            if tok is None:
                break
            piece = self.engine.piece(tok)
            if piece is None:  # end of generation
                self.finish = "stop"
                break
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
                    self._mark_first_token()
                    yield out
                if stopped:
                    self.finish = "stop"
                    break
            if self.n_gen >= self.budget:
                break
            if not self._evaluate(to_eval):
                break

    # ---- one step's parts ---------------------------------------------------

    def _sample(self) -> int | None:
        """The next token (None: the grammar admits none; the generation stops)."""
        if not self.constrained:
            return llama_cpp.llama_sampler_sample(self.chain, self.engine.ctx, -1)
        tok = self.grammar.sample(self.chain)  # type: ignore[union-attr]
        if tok is None:
            log.warning("grammar admits no token here; stopping generation")
            self.finish = "stop"
        return tok

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

    def _evaluate(self, to_eval: tuple[int, ...]) -> bool:
        """Evaluate the sampled token(s) so the next one can be sampled (False: no room)."""
        if len(to_eval) == 1:
            self.engine.decode_one(to_eval[0], self.pos)
        elif to_eval:
            if self.pos + len(to_eval) >= self.engine.n_ctx:
                return False
            self.engine.decode(list(to_eval), self.pos, None)
        self.pos += len(to_eval)
        return True

    def _final_text(self) -> str:
        """Text still held (a possible stop string's start, undecoded bytes) at the end."""
        tail = self.decoder.decode(b"", True)
        if self.finish == "stop":
            return ""
        rest, stopped = self.stops.flush(tail)
        if stopped:
            self.finish = "stop"
        return rest

    def _mark_first_token(self) -> None:
        if self.stats.first_token_seconds is None:
            self.stats.first_token_seconds = time.perf_counter() - self.t0
