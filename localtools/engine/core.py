"""The engine proper: one loaded model and one llama context with `n_parallel` sequence
slots, turning prompt strings into streams of text pieces.

Everything above it (templates, dialects, the API) deals in text; this deals in tokens
and batches. Not thread-safe: one thread drives it (`localtools.scheduler.Scheduler`),
starting generations in free slots and stepping them all together (`step`).

KV layout: one KV stream per slot (`kv_unified = false`), each `n_ctx` tokens long.
llama-server uses one unified buffer instead; measured with llama-cpp-python 0.3.36,
a unified buffer makes a sequence's logits depend on what the *other* slots hold (the
attention runs over every cell, masked), so the same request at temperature 0 gave
different text alone and in a busy batch. With split streams they are bitwise equal
(tests/test_batching.py), which is what the reproducibility rule needs.
"""

from __future__ import annotations

import ctypes
import threading
import time
from collections.abc import Iterator
from typing import Any

import llama_cpp

from localtools.engine.backend import (
    check_model_file,
    init_backend,
    log_mark,
    log_since,
)
from localtools.engine.batch import BatchStepper
from localtools.engine.errors import ContextLengthExceeded
from localtools.engine.generation import Generation
from localtools.engine.kv_cache import (
    FLASH_MIN_CHUNK,
    FLASH_SPLIT_FROM,
    MIN_STATE_TOKENS,
    MIN_TAIL,
    SlotCache,
    StateStore,
)
from localtools.engine.sampling import GrammarSampler, compile_grammar, jump_forward, make_chain
from localtools.engine.stops import compile_triggers
from localtools.engine.threads import ThreadGovernor, default_threads
from localtools.engine.tokens import VocabTokenizer
from localtools.engine.types import EngineConfig, GenerationStats, SamplingParams
from localtools.gbnf import Grammar


def _context_params(config: EngineConfig, n_ctx: int) -> Any:
    """llama.cpp context parameters for `config`: `n_parallel` KV streams of `n_ctx` tokens."""
    threads = config.n_threads or default_threads()  # one per physical core: threads.py
    cparams = llama_cpp.llama_context_default_params()
    n_seq = max(1, config.n_parallel)
    cparams.n_ctx = n_ctx * n_seq
    cparams.n_seq_max = n_seq
    cparams.kv_unified = False  # one stream per slot: see the module docstring
    cparams.n_threads = threads
    cparams.n_threads_batch = config.n_threads_batch or threads
    cparams.no_perf = True
    # Flash attention: on unless turned off (on the CPU explicitly, with GPU layers by
    # llama.cpp's choice), as in llama-server. On the 2-core machine a bare llama_decode of
    # one sequence took 6.1 ms against 6.9, of four 17.8 against 21.4 (it skips the KV
    # cells padded beyond the context); through `serve`, one stream got the gain, four
    # streams' throughput stayed within the bench's noise.
    # Its CPU kernel takes another path for prompt chunks of 64+ tokens (kv_cache's
    # FLASH_MIN_CHUNK handles that) and, for one token alone against 512+ KV cells,
    # splits the sum across threads, where inside a batch it does not: past 256 tokens of
    # context a reply's last bits depend on the traffic and the thread count (which the
    # governor holds for reproducible requests: batch.py). Off, replies
    # are bitwise reproducible at any length (README, "Reproducible output").
    flash = config.flash_attn if config.flash_attn is not None else (True if config.n_gpu_layers == 0 else None)
    if flash is not None:
        cparams.flash_attn_type = (
            llama_cpp.LLAMA_FLASH_ATTN_TYPE_ENABLED if flash else llama_cpp.LLAMA_FLASH_ATTN_TYPE_DISABLED
        )
    # prompt chunks are >= 2 tokens, and with flash attention a long prompt's are >= 64
    # while leaving >= 64: a smaller batch could split no prompt of 65-127 tokens that way
    n_batch = max(MIN_TAIL, min(max(config.n_batch, 2 * _smallest_chunk(cparams)), n_ctx))
    cparams.n_batch = n_batch
    cparams.n_ubatch = n_batch
    return cparams


def _smallest_chunk(cparams: Any) -> int:
    """A long prompt's smallest chunk under the reproducibility rule (kv_cache.chunk_class):
    FLASH_MIN_CHUNK unless flash attention is off (with GPU layers llama.cpp may choose it)."""
    return MIN_TAIL if cparams.flash_attn_type == llama_cpp.LLAMA_FLASH_ATTN_TYPE_DISABLED else FLASH_MIN_CHUNK


def _split_from(config: EngineConfig, cparams: Any) -> int | None:
    """The KV position from which one token alone gets sums that depend on the thread
    count: flash attention's CPU kernel (kv_cache.FLASH_SPLIT_FROM); None on a GPU."""
    cpu_flash = config.n_gpu_layers == 0 and cparams.flash_attn_type == llama_cpp.LLAMA_FLASH_ATTN_TYPE_ENABLED
    return FLASH_SPLIT_FROM if cpu_flash else None


class Engine(VocabTokenizer):
    """One loaded model and one llama context with sequence slots, generating with
    per-slot prefix reuse."""

    def __init__(self, config: EngineConfig):
        check_model_file(config.model_path)
        init_backend(config.verbose)
        self.config = config
        self.model_path = config.model_path

        mparams = llama_cpp.llama_model_default_params()
        mparams.n_gpu_layers = 0x7FFFFFFF if config.n_gpu_layers == -1 else config.n_gpu_layers
        mark = log_mark()
        model = llama_cpp.llama_model_load_from_file(config.model_path.encode("utf-8"), mparams)
        if not model:
            raise ValueError(
                f"llama.cpp could not load the model {config.model_path}: "
                f"{log_since(mark)[-500:] or 'unknown error'}"
            )
        self._model = model
        self._vocab = llama_cpp.llama_model_get_vocab(model)
        self._n_vocab = llama_cpp.llama_vocab_n_tokens(self._vocab)
        n_ctx_train = llama_cpp.llama_model_n_ctx_train(model)

        n_ctx = config.n_ctx if config.n_ctx > 0 else n_ctx_train
        cparams = _context_params(config, n_ctx)
        self._n_batch = cparams.n_batch
        ctx = llama_cpp.llama_init_from_model(model, cparams)
        if not ctx:
            llama_cpp.llama_model_free(model)
            self._model = None
            raise ValueError(
                f"llama.cpp could not create a context (n_ctx={n_ctx}) for {config.model_path}: "
                f"{log_since(mark)[-500:] or 'unknown error'}"
            )
        self._ctx = ctx
        self._memory = llama_cpp.llama_get_memory(ctx)
        self.n_ctx = llama_cpp.llama_n_ctx_seq(ctx)  # per slot
        self.n_parallel = llama_cpp.llama_n_seq_max(ctx)
        # the default thread count adapts to a loaded machine; a user's --threads stands
        governed = cparams.n_threads if config.n_threads is None else 1
        self._configured_threads = (cparams.n_threads, cparams.n_threads_batch)
        self.threads = ThreadGovernor(governed, self._apply_threads)
        self._stepper = BatchStepper(ctx, self._n_batch, self.threads, self._borrow_for_prefill,
                                     _split_from(config, cparams))
        self._calibrated = not self.threads.active  # on the first step: see _calibrate

        self.metadata: dict[str, str] = self._read_metadata()
        self._read_special_tokens()

        # token id -> its text bytes (special tokens rendered), or None for end-of-generation
        self._pieces: dict[int, bytes | None] = {}
        self._openers: dict[str, tuple[int, ...]] = {}  # tokens_opening's answers
        self.store = StateStore(ctx, config.state_cache_slots, config.state_cache_mb * 1024 * 1024,
                                _smallest_chunk(cparams))
        self.slots = [SlotCache(ctx, self._memory, self.store, seq) for seq in range(self.n_parallel)]
        self.active: dict[int, Generation] = {}  # seq_id -> its running generation
        self.tokens_generated = 0  # over the engine's life (metrics)
        self.tokens_reused = 0  # prompt tokens taken from the KV cache (metrics)
        self.prefixes_copied = 0  # prompts that started from another slot's cache
        self._closed = False
        self.last_stats: GenerationStats | None = None

    # ---- lifecycle -------------------------------------------------------

    def close(self) -> None:
        """Free the llama context and model (idempotent)."""
        if self._closed:
            return
        self._closed = True
        for gen in list(getattr(self, "active", {}).values()):
            self.release(gen)
        if getattr(self, "_stepper", None) is not None:
            self._stepper.free()
        if getattr(self, "_ctx", None):
            llama_cpp.llama_free(self._ctx)
            self._ctx = None
        if getattr(self, "_model", None):
            llama_cpp.llama_model_free(self._model)
            self._model = None

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:
            pass

    # ---- model facts -----------------------------------------------------

    def _read_metadata(self) -> dict[str, str]:
        meta: dict[str, str] = {}
        size = 4096
        buf = ctypes.create_string_buffer(size)
        for i in range(llama_cpp.llama_model_meta_count(self._model)):
            parts = []
            for getter in (llama_cpp.llama_model_meta_key_by_index, llama_cpp.llama_model_meta_val_str_by_index):
                n = getter(self._model, i, buf, size)
                if n >= size:
                    size = n + 1
                    buf = ctypes.create_string_buffer(size)
                    n = getter(self._model, i, buf, size)
                parts.append(buf.value.decode("utf-8", errors="replace") if n >= 0 else "")
            meta[parts[0]] = parts[1]
        return meta

    def chat_templates(self) -> dict[str, str]:
        """Templates embedded in the GGUF: {"default": ..., NAME: ...} (tokenizer.chat_template[.NAME])."""
        out: dict[str, str] = {}
        for key, value in self.metadata.items():
            if key == "tokenizer.chat_template":
                out["default"] = value
            elif key.startswith("tokenizer.chat_template."):
                out[key[len("tokenizer.chat_template."):]] = value
        return out

    @property
    def n_vocab(self) -> int:
        return self._n_vocab

    @property
    def vocab(self) -> Any:
        """The llama.cpp vocabulary handle (for grammar samplers)."""
        return self._vocab

    @property
    def ctx(self) -> Any:
        """The llama.cpp context handle (logits of the last evaluated batch live here)."""
        return self._ctx

    @property
    def kv(self) -> SlotCache:
        """Slot 0's cache (the only one with `n_parallel = 1`)."""
        return self.slots[0]

    @property
    def cached_tokens(self) -> list[int]:
        """A copy of the tokens held in slot 0's KV cache."""
        return list(self.slots[0].tokens)

    def reset_cache(self) -> None:
        """Forget every slot's KV cache and the saved states (prompts evaluated from scratch)."""
        llama_cpp.llama_memory_clear(self._memory, True)
        for slot in self.slots:
            slot.forget()
        self.store.clear()

    @property
    def saved_states(self) -> list[int]:
        """Token counts of the KV states kept for conversations switched away from."""
        return [len(st.tokens) for st in self.store.states]

    @property
    def state_cache_slots(self) -> int:
        """How many saved KV states are kept (0: none); settable, e.g. by benchmarks."""
        return self.store.slots

    @state_cache_slots.setter
    def state_cache_slots(self, slots: int) -> None:
        self.store.slots = max(0, slots)

    @property
    def state_cache_bytes(self) -> int:
        return self.store.max_bytes

    @property
    def slots_busy(self) -> int:
        return len(self.active)

    # ---- tokens ----------------------------------------------------------

    def detokenize(self, tokens: list[int], special: bool = True) -> str:
        """Token ids -> text (special tokens rendered when `special`)."""
        out = bytearray()
        buf = ctypes.create_string_buffer(256)
        for tok in tokens:
            n = llama_cpp.llama_token_to_piece(self._vocab, tok, buf, 256, 0, special)
            if n > 256:
                big = ctypes.create_string_buffer(n)
                n = llama_cpp.llama_token_to_piece(self._vocab, tok, big, n, 0, special)
                out += big.raw[:n]
            elif n > 0:
                out += buf.raw[:n]
        return out.decode("utf-8", errors="replace")

    def piece(self, token: int) -> bytes | None:
        """Bytes of a generated token (special tokens included), None for end-of-generation."""
        pieces = self._pieces
        return pieces[token] if token in pieces else self._new_piece(token)

    def tokens_opening(self, text: str) -> tuple[int, ...]:
        """Every token whose text is a non-empty beginning of `text` (or `text` itself
        and more): the tokens a reply can start `text` with. One vocabulary scan per text."""
        found = self._openers.get(text)
        if found is None:
            raw = text.encode("utf-8")
            found = tuple(
                tok for tok in range(self.n_vocab)
                if (p := self.piece(tok)) and (raw.startswith(p) or p.startswith(raw))
            )
            self._openers[text] = found
        return found

    def thread_counts(self) -> tuple[int, int]:
        """(one-token, batch) threads now: the configured ones, or 1 where the governor
        chose one thread (threads.py: a loaded machine, or one token cheaper on one)."""
        decode, batch = self._configured_threads
        if not self.threads.active:
            return decode, batch
        return (1 if self.threads.current == 1 else decode), (1 if self.threads.batch == 1 else batch)

    def _apply_threads(self, _threads: int) -> None:
        llama_cpp.llama_set_n_threads(self._ctx, *self.thread_counts())

    def _new_piece(self, token: int) -> bytes | None:
        if llama_cpp.llama_vocab_is_eog(self._vocab, token):
            piece = None
        else:
            buf = ctypes.create_string_buffer(256)
            n = llama_cpp.llama_token_to_piece(self._vocab, token, buf, 256, 0, True)
            if n > 256:
                buf = ctypes.create_string_buffer(n)
                n = llama_cpp.llama_token_to_piece(self._vocab, token, buf, n, 0, True)
            piece = buf.raw[: max(n, 0)]
        self._pieces[token] = piece
        return piece


    # ---- generation ------------------------------------------------------

    def compile_grammar(self, grammar: Grammar) -> GrammarSampler:
        """Parse `grammar` for this model's vocabulary (GrammarError if it does not parse).

        `generate` does this itself; exposed so the cost can be measured. Free the result.
        """
        return compile_grammar(self, grammar)

    def start(
        self,
        prompt: str | list[int],
        params: SamplingParams,
        cancel: threading.Event | None = None,
        stats: GenerationStats | None = None,
    ) -> Generation:
        """Put a new generation in a free slot (the one whose cache shares the most with
        the prompt); `step` then advances it. `prompt` is text, or tokens evaluated as
        given (a fill-in-the-middle prompt). Raises ContextLengthExceeded / GrammarError
        / ValueError for a bad request, RuntimeError when every slot is busy."""
        if self._closed:
            raise RuntimeError("engine is closed")
        st = stats if stats is not None else GenerationStats()
        t0 = time.perf_counter()
        tokens = self.tokenize_prompt(prompt) if isinstance(prompt, str) else list(prompt)
        st.prompt_tokens = len(tokens)
        if not tokens:
            raise ValueError("empty prompt")
        if len(tokens) >= self.n_ctx:
            raise ContextLengthExceeded(len(tokens), self.n_ctx)
        slot = self._free_slot(tokens)
        spec = params.grammar
        triggers = compile_triggers(spec.triggers) if spec is not None and spec.lazy else None
        grammar = compile_grammar(self, spec) if spec is not None else None
        chain = make_chain(params, self._n_vocab, self.config.seed)
        forced: list[int] = []
        if grammar is not None and spec is not None and triggers is None and params.logprobs is None:
            room = self.n_ctx - len(tokens) - 1
            limit = room if params.max_tokens is None else min(room, params.max_tokens)
            jumped = jump_forward(self, grammar, chain, spec, limit)
            if jumped is None:  # refused half-way: start the grammar afresh, sample it all
                grammar.free()
                grammar = compile_grammar(self, spec)
            else:
                forced = jumped
        gen = Generation(self, slot, tokens + forced, params, chain, grammar, triggers, cancel, st, t0,
                         forced=len(forced))
        self.active[slot.seq_id] = gen
        gen.start()
        self.tokens_reused += st.cached_tokens
        return gen

    def _free_slot(self, tokens: list[int]) -> SlotCache:
        free = [s for s in self.slots if s.seq_id not in self.active]
        if not free:
            raise RuntimeError(f"the engine is already generating in all its {self.n_parallel} slots")
        # the longest reusable prefix when it saves real work, else the lowest id: with
        # split KV streams llama.cpp evaluates only *consecutive* sequence ids in one pass,
        # so {0, 2} running costs two passes per step and {0, 1} one
        def worth(slot: SlotCache) -> tuple[int, int]:
            n = slot.reusable(tokens)
            return (n if n >= MIN_STATE_TOKENS else 0, -slot.seq_id)

        return max(free, key=worth)

    def _best_donor(self, slot: SlotCache, tokens: list[int], have: int) -> tuple[SlotCache | None, int]:
        """The other slot sharing the most reusable tokens with `tokens`, when that is at
        least MIN_STATE_TOKENS more than the `have` tokens `slot` holds already."""
        donors = [s for s in self.slots if s is not slot]
        if not donors:
            return None, 0
        donor = max(donors, key=lambda s: s.reusable(tokens))
        n = donor.reusable(tokens)
        return (donor, n) if n >= have + MIN_STATE_TOKENS else (None, 0)

    def _borrow_for_prefill(self, gen: Generation) -> None:
        """Before each prompt chunk: copy another slot's cache when it holds clearly more
        of this prompt than `gen`'s slot (after its own prefix and any saved state it
        brought back), busy or not. Parallel requests with one long system prompt and
        tools evaluate it once; requests arriving together copy it from the first one
        evaluated."""
        donor, n = self._best_donor(gen.slot, gen.tokens, gen.prefill_at)
        if donor is None:
            return
        gen.slot.copy_prefix_from(donor, n)
        if len(gen.slot.tokens) != n:  # llama.cpp could not keep a partial sequence
            gen.skip_prefix(0)
            return
        self.tokens_reused += n - gen.prefill_at
        gen.skip_prefix(n)
        self.prefixes_copied += 1

    def _calibrate(self) -> None:
        """The thread governor's first timings, on the thread that decodes: OpenMP keeps
        one team of workers per calling thread, and timings taken on another thread
        (measured: calibrating in __init__, decoding on the scheduler's worker) make all
        cores look twice as slow as they are."""
        self._calibrated = True
        empty = [s for s in self.slots if not s.tokens]
        if not empty:
            return
        probe = max(0, llama_cpp.llama_vocab_bos(self._vocab))
        self.threads.calibrate(lambda: self._stepper.time_one_token(empty[-1].seq_id, probe))

    def step(self) -> int:
        """Advance every active generation by one token (and one prompt chunk);
        finished ones leave their slot. Returns the tokens evaluated."""
        if not self._calibrated:
            self._calibrate()
        gens = []
        for gen in self.active.values():
            if gen.cancel is not None and gen.cancel.is_set():
                gen.abort("cancelled")
            if not gen.done:
                gens.append(gen)
        return self._stepper.step(gens) if gens else 0

    def release(self, gen: Generation, finish: str = "cancelled") -> None:
        """Take a generation out of its slot now (ending it first if it still runs)."""
        gen.abort(finish)
        gen.free()
        if self.active.get(gen.slot.seq_id) is gen:
            del self.active[gen.slot.seq_id]
            self.tokens_generated += gen.n_gen
        self.last_stats = gen.stats

    def generate(
        self,
        prompt: str | list[int],
        params: SamplingParams,
        cancel: threading.Event | None = None,
        stats: GenerationStats | None = None,
    ) -> Iterator[str]:
        """Yields text pieces of one generation, stepping the engine alone.

        Raises ContextLengthExceeded / GrammarError / ValueError on the first `next()`,
        before any text. `stats` is updated as generation runs and final when it ends.
        Not for use while the Scheduler drives this engine.
        """
        gen = self.start(prompt, params, cancel, stats)
        try:
            while True:
                yield from gen.drain()
                if gen.done:
                    break
                self.step()
            if gen.error is not None:
                raise gen.error
        finally:
            self.release(gen)
