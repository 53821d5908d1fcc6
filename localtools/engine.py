"""The inference engine: the only module that talks to llama.cpp (via llama-cpp-python).

It turns a prompt string into a stream of text pieces. Everything above it (templates,
dialects, the API) deals in text; this module deals in tokens, the KV cache and samplers.
It keeps the tokens currently held in the KV cache so that a new prompt sharing a prefix
with the previous conversation only evaluates what is new.

Not thread-safe: one llama context serves one generation at a time. Callers go through
`localtools.scheduler.Scheduler`.
"""

from __future__ import annotations

import codecs
import collections
import copy
import ctypes
import logging
import os
import re
import tempfile
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Iterator

import llama_cpp
from llama_cpp import llama_grammar

log = logging.getLogger(__name__)

GGUF_MAGIC = b"GGUF"


# --------------------------------------------------------------------------
# Public data types
# --------------------------------------------------------------------------


@dataclass
class EngineConfig:
    model_path: str
    n_ctx: int = 4096  # 0 = model's training context
    n_threads: int | None = None  # None: half the logical CPUs
    n_gpu_layers: int = 0
    seed: int = -1
    n_batch: int = 512
    verbose: bool = False
    n_threads_batch: int | None = None  # prompt evaluation threads (None: n_threads)
    flash_attn: bool | None = None  # None: off on CPU only, llama.cpp's choice with GPU layers
    # KV states of earlier conversations kept in RAM, so switching back to one does not
    # evaluate it again (0 slots: off). Bounded by count and by total size.
    state_cache_slots: int = 4
    state_cache_mb: int = 512


@dataclass
class GrammarSpec:
    """A GBNF grammar for constrained decoding (built by callers; the engine consumes it).

    The grammar's start rule is `root`. With `lazy=True`, generation is free until one of
    `triggers` (Python regexes, searched in the generated text) matches; the grammar then
    constrains the output starting at the match, so it must accept the trigger text
    itself. As in llama.cpp: when the pattern has capturing groups, the grammar starts at
    the first non-empty group (`^\\s*(\\{)` starts at the brace); a pattern written `^...$`
    must match the whole generated text.
    """

    gbnf: str
    lazy: bool = False
    triggers: list[str] = field(default_factory=list)


@dataclass
class SamplingParams:
    max_tokens: int | None = None  # None = until context is full
    temperature: float = 0.8
    top_p: float = 0.95
    top_k: int = 40
    min_p: float = 0.05
    repeat_penalty: float = 1.0
    presence_penalty: float = 0.0
    frequency_penalty: float = 0.0
    seed: int | None = None
    stop: list[str] = field(default_factory=list)
    grammar: GrammarSpec | None = None


@dataclass
class GenerationStats:
    prompt_tokens: int = 0  # length of the prompt in tokens
    cached_tokens: int = 0  # prompt tokens reused from the KV cache (common prefix)
    prompt_eval_tokens: int = 0  # prompt tokens actually evaluated this time
    completion_tokens: int = 0
    finish_reason: str = "stop"  # "stop" (EOS or stop string) | "length" | "cancelled"
    prompt_seconds: float = 0.0
    decode_seconds: float = 0.0
    first_token_seconds: float | None = None  # from start to first piece


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


def llama_cpp_version() -> str:
    """The llama-cpp-python version in use (reported by benchmarks and `inspect`)."""
    return str(getattr(llama_cpp, "__version__", "unknown"))


def baseline_llama(model_path: str, *, n_ctx: int, n_threads: int) -> Any:
    """llama-cpp-python's own high-level `Llama`, for benchmarks that compare against it.

    Lives here so that only this module imports llama_cpp; nothing in localtools serves
    requests with it. Threads for prompt evaluation match `Engine`'s default (same as
    generation), so both sides of a comparison run the same way.
    """
    return llama_cpp.Llama(
        model_path, n_ctx=n_ctx, n_threads=n_threads, n_threads_batch=n_threads, verbose=False
    )


# --------------------------------------------------------------------------
# llama.cpp logging: keep recent messages (for error reports), print only if verbose
# --------------------------------------------------------------------------

_recent_log: collections.deque[str] = collections.deque(maxlen=64)
_log_lock = threading.Lock()
_verbose_logging = False
_backend_ready = False


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


def _init_backend(verbose: bool) -> None:
    global _backend_ready, _verbose_logging
    _verbose_logging = _verbose_logging or verbose
    if _backend_ready:
        return
    llama_cpp.llama_log_set(_on_llama_log, ctypes.c_void_p(0))
    llama_cpp.llama_backend_init()
    _backend_ready = True


class _CapturedStderr:
    """Captures what native code writes to file descriptor 2 (llama.cpp's grammar parser
    reports errors with fprintf(stderr), not through the log callback)."""

    _lock = threading.Lock()

    def __enter__(self) -> "_CapturedStderr":
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


def _log_since(mark: int) -> str:
    """Log text emitted after `mark` (a length of the recent-log deque)."""
    lines = list(_recent_log)[mark:]
    return "".join(lines).strip()


# --------------------------------------------------------------------------
# The engine
# --------------------------------------------------------------------------


def _check_model_file(path: str) -> None:
    if not os.path.exists(path):
        raise FileNotFoundError(f"model file not found: {path}")
    if os.path.isdir(path):
        raise ValueError(f"model path is a directory, not a GGUF file: {path}")
    with open(path, "rb") as fh:
        magic = fh.read(4)
    if magic != GGUF_MAGIC:
        raise ValueError(f"not a GGUF file (bad magic {magic!r}): {path}")


class Engine:
    """One loaded model and one llama context, with prefix-reusing generation."""

    def __init__(self, config: EngineConfig):
        _check_model_file(config.model_path)
        _init_backend(config.verbose)
        self.config = config
        self.model_path = config.model_path

        mparams = llama_cpp.llama_model_default_params()
        mparams.n_gpu_layers = 0x7FFFFFFF if config.n_gpu_layers == -1 else config.n_gpu_layers
        mark = len(_recent_log)
        model = llama_cpp.llama_model_load_from_file(config.model_path.encode("utf-8"), mparams)
        if not model:
            raise ValueError(
                f"llama.cpp could not load the model {config.model_path}: "
                f"{_log_since(mark)[-500:] or 'unknown error'}"
            )
        self._model = model
        self._vocab = llama_cpp.llama_model_get_vocab(model)
        self._n_vocab = llama_cpp.llama_vocab_n_tokens(self._vocab)
        n_ctx_train = llama_cpp.llama_model_n_ctx_train(model)

        # Half the logical CPUs, like llama-cpp-python: ggml's worker threads spin-wait,
        # and on an oversubscribed machine a thread per CPU is several times slower.
        threads = config.n_threads or max(1, (os.cpu_count() or 2) // 2)
        threads_batch = config.n_threads_batch or threads
        n_ctx = config.n_ctx if config.n_ctx > 0 else n_ctx_train
        self._n_batch = max(1, min(config.n_batch, n_ctx))
        cparams = llama_cpp.llama_context_default_params()
        cparams.n_ctx = n_ctx
        cparams.n_batch = self._n_batch
        cparams.n_ubatch = self._n_batch
        cparams.n_seq_max = 1
        cparams.n_threads = threads
        cparams.n_threads_batch = threads_batch
        cparams.no_perf = True
        # CPU-only: flash attention measured ~3% slower decoding (and llama-cpp-python
        # disables it by default); with GPU layers llama.cpp chooses.
        flash = config.flash_attn if config.flash_attn is not None else (False if config.n_gpu_layers == 0 else None)
        if flash is not None:
            cparams.flash_attn_type = (
                llama_cpp.LLAMA_FLASH_ATTN_TYPE_ENABLED if flash else llama_cpp.LLAMA_FLASH_ATTN_TYPE_DISABLED
            )
        ctx = llama_cpp.llama_init_from_model(model, cparams)
        if not ctx:
            llama_cpp.llama_model_free(model)
            self._model = None
            raise ValueError(
                f"llama.cpp could not create a context (n_ctx={n_ctx}) for {config.model_path}: "
                f"{_log_since(mark)[-500:] or 'unknown error'}"
            )
        self._ctx = ctx
        self._memory = llama_cpp.llama_get_memory(ctx)
        self.n_ctx = llama_cpp.llama_n_ctx(ctx)
        self._batch = llama_cpp.llama_batch_init(self._n_batch, 0, 1)

        self.metadata: dict[str, str] = self._read_metadata()
        bos = llama_cpp.llama_vocab_bos(self._vocab)
        eos = llama_cpp.llama_vocab_eos(self._vocab)
        self.bos_token_id: int = bos
        self.eos_token_id: int = eos
        self.bos_token: str = self._token_text(bos) if bos >= 0 else ""
        self.eos_token: str = self._token_text(eos) if eos >= 0 else ""
        self._add_bos = bool(llama_cpp.llama_vocab_get_add_bos(self._vocab)) and bos >= 0

        # token id -> its text bytes (special tokens rendered), or None for end-of-generation
        self._pieces: dict[int, bytes | None] = {}
        self._cached: list[int] = []  # tokens whose K/V are in the cache, in order
        self._states: list[_SavedState] = []  # saved KV states, most recently used last
        self.state_cache_slots = max(0, config.state_cache_slots)
        self.state_cache_bytes = max(0, config.state_cache_mb) * 1024 * 1024
        self._generating = False
        self._closed = False
        self.last_stats: GenerationStats | None = None

    # ---- lifecycle -------------------------------------------------------

    def close(self) -> None:
        """Free the llama context and model (idempotent)."""
        if self._closed:
            return
        self._closed = True
        if getattr(self, "_batch", None) is not None:
            llama_cpp.llama_batch_free(self._batch)
            self._batch = None
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

    def _token_text(self, token: int) -> str:
        raw = llama_cpp.llama_vocab_get_text(self._vocab, token)
        return raw.decode("utf-8", errors="replace") if raw else ""

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
    def cached_tokens(self) -> list[int]:
        """A copy of the tokens currently held in the KV cache."""
        return list(self._cached)

    def reset_cache(self) -> None:
        """Forget the KV cache and the saved states (the next prompt is evaluated from scratch)."""
        llama_cpp.llama_memory_clear(self._memory, True)
        self._cached = []
        self._states = []

    @property
    def saved_states(self) -> list[int]:
        """Token counts of the KV states kept for conversations switched away from."""
        return [len(st.tokens) for st in self._states]

    # ---- tokens ----------------------------------------------------------

    def tokenize(self, text: str, add_bos: bool = False, special: bool = True) -> list[int]:
        """Text -> token ids. `special=True` parses control-token text like `<|im_start|>`."""
        data = text.encode("utf-8")
        capacity = len(data) + 8
        arr = (llama_cpp.llama_token * capacity)()
        n = llama_cpp.llama_tokenize(self._vocab, data, len(data), arr, capacity, add_bos, special)
        if n < 0:
            capacity = -n
            arr = (llama_cpp.llama_token * capacity)()
            n = llama_cpp.llama_tokenize(self._vocab, data, len(data), arr, capacity, add_bos, special)
            if n < 0:
                raise ValueError(f"tokenization failed ({n}) for text of {len(data)} bytes")
        return arr[:n]

    def count_tokens(self, text: str) -> int:
        """Number of tokens of `text` (no BOS added, special tokens parsed)."""
        return len(self.tokenize(text))

    def tokenize_prompt(self, prompt: str) -> list[int]:
        """The tokens `generate` evaluates for `prompt`.

        Rendered chat templates usually write BOS themselves; BOS is added only when the
        model asks for one (tokenizer.ggml.add_bos_token) and the text does not start with it.
        """
        tokens = self.tokenize(prompt, add_bos=False, special=True)
        if self._add_bos and (not tokens or tokens[0] != self.bos_token_id):
            tokens.insert(0, self.bos_token_id)
        return tokens

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

    def _piece(self, token: int) -> bytes | None:
        """Bytes of a generated token (special tokens included), None for end-of-generation."""
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

    # ---- evaluation ------------------------------------------------------

    def _decode(self, tokens: list[int], start_pos: int, cancel: threading.Event | None) -> bool:
        """Evaluate `tokens` at positions start_pos.. in n_batch chunks; logits for the last.

        Returns False if cancelled between chunks (the cache then holds what was evaluated).
        """
        batch = self._batch
        total = len(tokens)
        for off in range(0, total, self._n_batch):
            if cancel is not None and off > 0 and cancel.is_set():
                return False
            chunk = tokens[off : off + self._n_batch]
            n = len(chunk)
            batch.n_tokens = n
            for i, tok in enumerate(chunk):
                batch.token[i] = tok
                batch.pos[i] = start_pos + off + i
                batch.n_seq_id[i] = 1
                batch.seq_id[i][0] = 0
                batch.logits[i] = 0
            batch.logits[n - 1] = 1 if off + n == total else 0
            rc = llama_cpp.llama_decode(self._ctx, batch)
            if rc != 0:
                self._resync_after_failure()
                raise EngineError(f"llama_decode failed with code {rc}")
            self._cached.extend(chunk)
        return True

    def _resync_after_failure(self) -> None:
        """After a failed decode the cache contents are uncertain: start over."""
        self.reset_cache()

    def _switch_state(self, tokens: list[int]) -> None:
        """Before a prompt that drops much of the cache: keep the cache's state, and bring
        back a saved one that shares more with the prompt (two users taking turns)."""
        if not self.state_cache_slots:
            return
        limit = len(tokens) - 1
        current = _common_prefix(self._cached, tokens, limit)
        if len(self._cached) - current < _MIN_STATE_TOKENS:
            return  # the cache mostly stays: nothing worth saving
        best, best_len = None, current
        for st in self._states:
            n = _common_prefix(st.tokens, tokens, limit)
            if n > best_len:
                best, best_len = st, n
        restore = best is not None and best_len >= current + _MIN_STATE_TOKENS
        if restore:
            self._states.remove(best)  # before saving: saving may evict it (least recently used)
        self._save_state()
        if restore:
            self._restore_state(best)

    def _save_state(self) -> None:
        ctx = self._ctx
        size = llama_cpp.llama_state_seq_get_size(ctx, 0)
        if size <= 0 or size > self.state_cache_bytes:
            return
        buf = (ctypes.c_uint8 * size)()
        written = llama_cpp.llama_state_seq_get_data(ctx, buf, size, 0)
        if written <= 0:
            return
        self._states.append(_SavedState(list(self._cached), buf, written))
        total = sum(st.size for st in self._states)
        while self._states and (len(self._states) > self.state_cache_slots or total > self.state_cache_bytes):
            total -= self._states.pop(0).size  # least recently used first

    def _restore_state(self, st: "_SavedState") -> None:
        """Load a saved state (already taken out of `_states`) into the context."""
        llama_cpp.llama_memory_seq_rm(self._memory, 0, -1, -1)
        if llama_cpp.llama_state_seq_set_data(self._ctx, st.data, st.size, 0) == 0:
            log.warning("could not restore a saved KV state; evaluating the prompt again")
            self.reset_cache()
            return
        self._cached = list(st.tokens)

    def _reuse_prefix(self, tokens: list[int]) -> int:
        """Keep the longest cached prefix of `tokens` (leaving >= 1 token to evaluate)."""
        cached = self._cached
        limit = min(len(cached), len(tokens) - 1)
        n = 0
        while n < limit and cached[n] == tokens[n]:
            n += 1
        if n < len(cached):
            if not llama_cpp.llama_memory_seq_rm(self._memory, -1, n, -1):
                # e.g. recurrent models cannot drop a partial sequence
                llama_cpp.llama_memory_clear(self._memory, True)
                n = 0
            del self._cached[n:]
        return n

    # ---- sampling --------------------------------------------------------

    def _make_chain(self, params: SamplingParams) -> Any:
        """The llama.cpp sampler chain for `params`, without any grammar."""
        chain = llama_cpp.llama_sampler_chain_init(llama_cpp.llama_sampler_chain_default_params())
        add = llama_cpp.llama_sampler_chain_add
        if (
            params.repeat_penalty != 1.0
            or params.frequency_penalty != 0.0
            or params.presence_penalty != 0.0
        ):
            add(
                chain,
                llama_cpp.llama_sampler_init_penalties(
                    self._n_vocab, 64, params.repeat_penalty, params.frequency_penalty, params.presence_penalty
                ),
            )
        if params.temperature <= 0.0:
            add(chain, llama_cpp.llama_sampler_init_greedy())
        else:
            if params.top_k > 0:
                add(chain, llama_cpp.llama_sampler_init_top_k(params.top_k))
            if params.top_p < 1.0:
                add(chain, llama_cpp.llama_sampler_init_top_p(params.top_p, 1))
            if params.min_p > 0.0:
                add(chain, llama_cpp.llama_sampler_init_min_p(params.min_p, 1))
            add(chain, llama_cpp.llama_sampler_init_temp(params.temperature))
            add(chain, llama_cpp.llama_sampler_init_dist(self._seed_for(params)))
        return chain

    def _seed_for(self, params: SamplingParams) -> int:
        if params.seed is not None:
            return params.seed & 0xFFFFFFFF
        if self.config.seed is not None and self.config.seed >= 0:
            return self.config.seed & 0xFFFFFFFF
        return llama_cpp.LLAMA_DEFAULT_SEED  # llama.cpp picks a random seed

    def _make_grammar(self, spec: GrammarSpec) -> "_Grammar":
        gbnf = spec.gbnf.encode("utf-8")
        mark = len(_recent_log)
        captured = _CapturedStderr()
        with captured:
            smpl = llama_cpp.llama_sampler_init_grammar(self._vocab, gbnf, b"root")
        if not smpl:
            detail = (captured.text + "\n" + _log_since(mark)).strip() or "unknown parse error"
            raise GrammarError(f"failed to parse grammar: {detail[-800:]}")
        return _Grammar(self, smpl)

    # ---- generation ------------------------------------------------------

    def generate(
        self,
        prompt: str,
        params: SamplingParams,
        cancel: threading.Event | None = None,
        stats: GenerationStats | None = None,
    ) -> Iterator[str]:
        """Yields text pieces. NOT thread-safe: callers go through the Scheduler.

        Raises ContextLengthExceeded / GrammarError / ValueError on the first `next()`,
        before any text. `stats` is updated as generation runs and final when it ends.
        """
        if self._closed:
            raise RuntimeError("engine is closed")
        st = stats if stats is not None else GenerationStats()
        t0 = time.perf_counter()
        tokens = self.tokenize_prompt(prompt)
        n_prompt = len(tokens)
        st.prompt_tokens = n_prompt
        if n_prompt == 0:
            raise ValueError("empty prompt")
        if n_prompt >= self.n_ctx:
            raise ContextLengthExceeded(n_prompt, self.n_ctx)
        spec = params.grammar
        triggers = _compile_triggers(spec.triggers) if spec is not None and spec.lazy else None
        grammar = self._make_grammar(spec) if spec is not None else None
        if self._generating:
            if grammar is not None:
                grammar.free()
            raise RuntimeError("the engine is already generating (one generation at a time)")
        chain = self._make_chain(params)
        self._generating = True
        try:
            yield from self._run(tokens, params, chain, grammar, triggers, cancel, st, t0)
        finally:
            self._generating = False
            llama_cpp.llama_sampler_free(chain)
            if grammar is not None:
                grammar.free()
            self.last_stats = st

    def _run(
        self,
        tokens: list[int],
        params: SamplingParams,
        chain: Any,
        grammar: "_Grammar | None",
        triggers: "list[re.Pattern[str]] | None",
        cancel: threading.Event | None,
        st: GenerationStats,
        t0: float,
    ) -> Iterator[str]:
        n_prompt = len(tokens)
        self._switch_state(tokens)
        reused = self._reuse_prefix(tokens)
        st.cached_tokens = reused
        st.prompt_eval_tokens = n_prompt - reused
        t1 = time.perf_counter()
        if not self._decode(tokens[reused:], reused, cancel):
            st.finish_reason = "cancelled"
            st.prompt_seconds = time.perf_counter() - t0
            return
        t1 = time.perf_counter()
        st.prompt_seconds = t1 - t0

        budget = self.n_ctx - n_prompt  # room left in the context window
        if params.max_tokens is not None:
            budget = min(budget, max(params.max_tokens, 0))
        stops = [s for s in params.stop if s]
        max_stop = max((len(s) for s in stops), default=0)

        # constrained: grammar active now; awaiting: lazy grammar waiting for its trigger
        constrained = grammar is not None and triggers is None
        awaiting = grammar is not None and triggers is not None
        generated = ""  # all generated text, kept only while awaiting a trigger

        decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        decode_bytes = decoder.decode
        pieces = self._pieces
        get_piece = self._piece
        sample = llama_cpp.llama_sampler_sample
        llama_decode = llama_cpp.llama_decode
        ctx = self._ctx
        batch = self._batch
        cached = self._cached

        pending = ""  # text held back because it may start a stop string
        n_gen = 0
        finish = "length"
        pos = n_prompt  # KV position of the next token to evaluate
        try:
            while n_gen < budget:
                if cancel is not None and cancel.is_set():
                    finish = "cancelled"
                    break
                if constrained:
                    tok = grammar.sample(chain)  # type: ignore[union-attr]
                    if tok is None:
                        log.warning("grammar admits no token here; stopping generation")
                        finish = "stop"
                        break
                else:
                    tok = sample(chain, ctx, -1)
                piece = pieces[tok] if tok in pieces else get_piece(tok)
                if piece is None:  # end of generation
                    finish = "stop"
                    break
                n_gen += 1
                text = decode_bytes(piece)
                to_eval = (tok,)
                if awaiting and text:
                    start = len(generated)
                    generated += text
                    where = _trigger_start(triggers, generated, max(0, start - _TRIGGER_LOOKBACK))  # type: ignore[arg-type]
                    if where >= 0:
                        awaiting = False
                        armed = grammar.arm(generated, where, start)  # type: ignore[union-attr]
                        if armed is None:
                            log.warning("lazy grammar rejected its own trigger text; continuing unconstrained")
                        else:
                            constrained = True
                            kept_text, replacement = armed
                            if replacement is not None:  # the sampled token ran past the grammar
                                text = kept_text
                                to_eval = tuple(replacement)
                                n_gen += len(replacement) - 1
                                decoder.reset()
                        generated = ""
                st.completion_tokens = n_gen
                if text:
                    if stops:
                        pending += text
                        cut = _find_stop(pending, stops)
                        if cut >= 0:
                            if cut > 0:
                                if st.first_token_seconds is None:
                                    st.first_token_seconds = time.perf_counter() - t0
                                yield pending[:cut]
                            pending = ""
                            finish = "stop"
                            break
                        keep = _partial_stop_len(pending, stops, max_stop)
                        text = pending[: len(pending) - keep]
                        pending = pending[len(pending) - keep :]
                    if text:
                        if st.first_token_seconds is None:
                            st.first_token_seconds = time.perf_counter() - t0
                        yield text
                if n_gen >= budget:
                    break
                # evaluate the sampled token(s) so the next one can be sampled
                if len(to_eval) == 1:
                    batch.n_tokens = 1
                    batch.token[0] = to_eval[0]
                    batch.pos[0] = pos
                    batch.n_seq_id[0] = 1
                    batch.seq_id[0][0] = 0
                    batch.logits[0] = 1
                    rc = llama_decode(ctx, batch)
                    if rc != 0:
                        self._resync_after_failure()
                        raise EngineError(f"llama_decode failed with code {rc}")
                    cached.append(to_eval[0])
                elif to_eval:
                    if pos + len(to_eval) >= self.n_ctx:
                        break
                    self._decode(list(to_eval), pos, None)
                pos += len(to_eval)
            tail = pending + decode_bytes(b"", True)
            if tail and finish != "stop":
                if stops:
                    cut = _find_stop(tail, stops)
                    if cut >= 0:
                        tail, finish = tail[:cut], "stop"
                if tail:
                    if st.first_token_seconds is None:
                        st.first_token_seconds = time.perf_counter() - t0
                    yield tail
            st.finish_reason = finish
        finally:
            st.completion_tokens = n_gen
            st.decode_seconds = time.perf_counter() - t1


class _Grammar:
    """A strict llama.cpp grammar sampler used beside (not inside) the sampler chain.

    Sampling is "sample freely, then verify": the chain picks a token and the grammar
    checks only that one; only if it is rejected are all candidates filtered by the
    grammar and the chain re-run. Grammar-first filtering of the whole vocabulary on
    every token halves decode speed; this keeps constrained decoding near free speed.

    A lazy grammar is armed by `arm()` when its trigger matched: the text from the
    trigger on is replayed into the grammar. (llama.cpp's own lazy-patterns sampler
    aborts the whole process, via an uncaught C++ exception, when the triggering token
    carries text the grammar rejects, and on regexes std::regex cannot compile; so the
    trigger search runs here, in Python.)
    """

    def __init__(self, engine: Engine, smpl: Any):
        import numpy as np

        self._np = np
        self._engine = engine
        self.smpl = smpl
        n_vocab = engine.n_vocab
        self._n_vocab = n_vocab
        self._data = (llama_cpp.llama_token_data * n_vocab)()
        self._view = np.frombuffer(
            self._data, dtype=np.dtype([("id", np.int32), ("logit", np.float32), ("p", np.float32)])
        )
        self._ids = np.arange(n_vocab, dtype=np.int32)
        self._arr = llama_cpp.llama_token_data_array(
            data=self._data, size=n_vocab, selected=-1, sorted=False
        )
        self._one = (llama_cpp.llama_token_data * 1)()
        self._one_arr = llama_cpp.llama_token_data_array(data=self._one, size=1, selected=-1, sorted=False)
        self._arr_ref = ctypes.byref(self._arr)
        self._one_ref = ctypes.byref(self._one_arr)

    def free(self) -> None:
        if self.smpl:
            llama_cpp.llama_sampler_free(self.smpl)
            self.smpl = None

    def allows(self, token: int) -> bool:
        """Whether the grammar accepts `token` next (no state change)."""
        one = self._one[0]
        one.id = token
        one.logit = 0.0
        one.p = 0.0
        self._one_arr.size = 1
        self._one_arr.selected = -1
        self._one_arr.sorted = False
        llama_cpp.llama_sampler_apply(self.smpl, self._one_ref)
        return self._one[0].logit != float("-inf")

    def _fill_candidates(self) -> None:
        np = self._np
        logits = llama_cpp.llama_get_logits_ith(self._engine._ctx, -1)
        self._view["id"] = self._ids
        self._view["logit"] = np.ctypeslib.as_array(logits, shape=(self._n_vocab,))
        self._view["p"] = 0.0
        self._arr.data = self._data
        self._arr.size = self._n_vocab
        self._arr.selected = -1
        self._arr.sorted = False

    def sample(self, chain: Any) -> int | None:
        """Pick the next token under the grammar and accept it everywhere (None: dead end)."""
        self._fill_candidates()
        llama_cpp.llama_sampler_apply(chain, self._arr_ref)
        token = self._data[self._arr.selected].id if self._arr.selected >= 0 else -1
        if token < 0 or not self.allows(token):
            self._fill_candidates()
            llama_cpp.llama_sampler_apply(self.smpl, self._arr_ref)
            if not self._np.isfinite(self._view["logit"][: self._arr.size]).any():
                return None
            llama_cpp.llama_sampler_apply(chain, self._arr_ref)
            if self._arr.selected < 0:
                return None
            token = self._data[self._arr.selected].id
        llama_cpp.llama_sampler_accept(self.smpl, token)
        llama_cpp.llama_sampler_accept(chain, token)
        return token

    def arm(self, generated: str, where: int, last_start: int) -> tuple[str, list[int] | None] | None:
        """Replay generated[where:] into the grammar once a trigger matched at `where`.

        `last_start` is where the text of the latest (not yet evaluated) token begins.
        Returns (text, None) when everything was accepted; (kept text of the latest
        token, tokens to evaluate instead of it) when the latest token ran past what the
        grammar accepts; None when the grammar rejects text before the latest token.
        """
        engine = self._engine
        fragment = generated[where:].encode("utf-8")
        accepted = 0
        for tok in engine.tokenize(generated[where:], add_bos=False, special=True):
            piece = engine._pieces[tok] if tok in engine._pieces else engine._piece(tok)
            if not piece or not self.allows(tok):
                break
            llama_cpp.llama_sampler_accept(self.smpl, tok)
            accepted += len(piece)
        if accepted >= len(fragment):
            return generated[last_start:], None
        kept_upto = where + len(fragment[:accepted].decode("utf-8", errors="ignore"))
        if kept_upto < last_start:
            return None
        kept = generated[last_start:kept_upto]
        return kept, engine.tokenize(kept, add_bos=False, special=True) if kept else []


_MIN_STATE_TOKENS = 32  # smaller savings are not worth a state copy


@dataclass
class _SavedState:
    """The KV state of sequence 0 (llama_state_seq_get_data) and the tokens it holds."""

    tokens: list[int]
    data: Any  # ctypes uint8 array
    size: int


def _common_prefix(a: list[int], b: list[int], limit: int) -> int:
    n = min(len(a), len(b), limit)
    i = 0
    while i < n and a[i] == b[i]:
        i += 1
    return i


_TRIGGER_LOOKBACK = 1024  # chars of earlier text a new trigger match may start in


def _compile_triggers(patterns: list[str]) -> list[re.Pattern[str]]:
    if not patterns:
        raise GrammarError("a lazy grammar needs at least one trigger pattern")
    compiled = []
    for pattern in patterns:
        try:
            compiled.append(re.compile(pattern))
        except re.error as exc:
            raise GrammarError(f"invalid trigger pattern {pattern!r}: {exc}") from None
    return compiled


def _trigger_start(triggers: list[re.Pattern[str]], text: str, search_from: int) -> int:
    """Where the grammar starts if a trigger matches `text`, else -1.

    As in llama.cpp: a pattern written `^...$` must match the whole text, others match
    anywhere; the grammar starts at the first non-empty capturing group, else at the match.
    """
    best = -1
    for rx in triggers:
        src = rx.pattern
        if src.startswith("^") and src.endswith("$"):
            m = rx.fullmatch(text)
        else:
            m = rx.search(text, search_from)
        if m is None:
            continue
        start = m.start()
        for g in range(1, (rx.groups or 0) + 1):
            if m.start(g) >= 0 and m.end(g) > m.start(g):
                start = m.start(g)
                break
        if best < 0 or start < best:
            best = start
    return best


def _find_stop(text: str, stops: list[str]) -> int:
    """Index of the earliest stop string in `text`, or -1."""
    best = -1
    for s in stops:
        i = text.find(s)
        if i >= 0 and (best < 0 or i < best):
            best = i
    return best


def _partial_stop_len(text: str, stops: list[str], max_stop: int) -> int:
    """Length of the longest tail of `text` that is a proper prefix of some stop string."""
    upto = min(len(text), max_stop - 1)
    for k in range(upto, 0, -1):
        tail = text[-k:]
        for s in stops:
            if len(s) > k and s.startswith(tail):
                return k
    return 0


# --------------------------------------------------------------------------
# JSON schema -> GBNF (several schemas, one grammar)
# --------------------------------------------------------------------------

_MAX_REPEAT = 1000  # larger min/max lengths and item counts explode the GBNF text
_GENERATED_PREFIX = "x"  # internal rule-name prefix per schema: x0-..., x1-...


def gbnf_rule_name(key: str) -> str:
    """The GBNF rule name `json_schema_to_gbnf` gives to `key` (invalid characters -> '-')."""
    return llama_grammar.INVALID_RULE_CHARS_RE.sub("-", key)


def json_schema_to_gbnf(schemas: dict[str, dict]) -> str:
    """Convert several JSON schemas into ONE GBNF text with one rule per dict key.

    Rule names are the keys with characters GBNF does not allow replaced by '-'
    (see `gbnf_rule_name`): {"args-get_weather": {...}} gives a rule `args-get-weather`.
    No `root` rule is written; callers append their own. Schema parts the converter
    cannot handle are relaxed (dropped) with a logged warning rather than raised.
    Raises ValueError only for keys that collide after sanitising or with built-in rules.
    """
    converter = llama_grammar.SchemaConverter(
        prop_order={}, allow_fetch=False, dotall=False, raw_pattern=False
    )
    aliases: dict[str, str] = {}
    for i, (key, schema) in enumerate(schemas.items()):
        name = gbnf_rule_name(key)
        if not name or name in aliases or name == "root" or name in llama_grammar.RESERVED_NAMES:
            raise ValueError(f"grammar rule name {name!r} (from {key!r}) is empty, duplicated or reserved")
        internal = f"{_GENERATED_PREFIX}{i}-{name}"
        aliases[name] = _visit_relaxed(converter, schema, internal, key)
    rules = dict(converter._rules)
    for name, target in aliases.items():
        if name in rules:
            raise ValueError(f"grammar rule name {name!r} collides with a generated rule")
        rules[name] = target
    return "\n".join(f"{name} ::= {body}" for name, body in sorted(rules.items())) + "\n"


def _visit_relaxed(converter: Any, schema: Any, internal: str, key: str) -> str:
    """Visit `schema`, relaxing it step by step until the converter accepts it."""
    if not isinstance(schema, dict):
        log.warning("schema for %r is not an object; allowing any JSON value", key)
        schema = {}
    current = _namespace_defs(copy.deepcopy(schema), internal)
    current = _relax(current, drop=set(), key=key)  # huge limits always go
    steps = [
        ("", set()),
        ("dropped 'pattern'", {"pattern", "patternProperties"}),
        ("dropped '$ref'", {"$ref"}),
        ("dropped 'format'", {"format"}),
    ]
    last_error: Exception | None = None
    for what, drop in steps:
        if drop:
            current = _relax(current, drop=drop, key=None)
        snapshot = dict(converter._rules)
        try:
            resolved = converter.resolve_refs(copy.deepcopy(current), key)
            return converter.visit(resolved, internal)
        except Exception as exc:  # the converter raises assertion/value/key errors
            converter._rules = snapshot
            last_error = exc
            log.warning("JSON schema for %r: %s (next try: %s)", key, exc, what or "as is")
    log.warning("JSON schema for %r could not be converted (%s); allowing any JSON object", key, last_error)
    return converter.visit({"type": "object"}, internal)


_SCHEMA_MAPS = ("properties", "$defs", "definitions", "patternProperties", "dependentSchemas")
_SCHEMA_LISTS = ("anyOf", "oneOf", "allOf", "prefixItems")
_SCHEMA_ONE = ("items", "additionalProperties", "not", "contains", "if", "then", "else", "propertyNames")
_LIMITS = ("minLength", "maxLength", "minItems", "maxItems")


def _relax(node: Any, drop: set[str], key: str | None) -> Any:
    """Copy of a schema without the keywords in `drop` and without huge length/item limits.

    Walks only schema positions, so a *property* called "pattern" is kept.
    """
    if isinstance(node, list):  # "items": [...] (old tuple form)
        return [_relax(v, drop, key) for v in node]
    if not isinstance(node, dict):
        return node
    out: dict[str, Any] = {}
    for k, v in node.items():
        if k in drop:
            continue
        if k in _LIMITS and isinstance(v, int) and not isinstance(v, bool) and not 0 <= v <= _MAX_REPEAT:
            if key is not None:
                log.warning("JSON schema for %r: dropped %s=%s (too large for a grammar)", key, k, v)
            continue
        if k in _SCHEMA_MAPS and isinstance(v, dict):
            out[k] = {name: _relax(sub, drop, key) for name, sub in v.items()}
        elif k in _SCHEMA_LISTS and isinstance(v, list):
            out[k] = [_relax(sub, drop, key) for sub in v]
        elif k in _SCHEMA_ONE:
            out[k] = _relax(v, drop, key)
        else:
            out[k] = v
    return out


def _namespace_defs(schema: dict, prefix: str) -> dict:
    """Prefix top-level $defs/definitions names (and the refs to them).

    The converter names a referenced rule after the last segment of its $ref, so two
    tool schemas that both define "Location" would otherwise share one rule.
    """
    renames: dict[str, str] = {}
    for section in ("$defs", "definitions"):
        defs = schema.get(section)
        if isinstance(defs, dict):
            schema[section] = {f"{prefix}-{name}": sub for name, sub in defs.items()}
            for name in defs:
                renames[f"#/{section}/{name}"] = f"#/{section}/{prefix}-{name}"
    if not renames:
        return schema

    def renamed(ref: str) -> str:
        for old, new in renames.items():
            if ref == old or ref.startswith(old + "/"):
                return new + ref[len(old):]
        return ref

    def rewrite(node: Any) -> Any:
        if isinstance(node, dict):
            return {
                k: (renamed(v) if k == "$ref" and isinstance(v, str) else rewrite(v))
                for k, v in node.items()
            }
        if isinstance(node, list):
            return [rewrite(v) for v in node]
        return node

    return rewrite(schema)
