"""Choosing the next token: llama.cpp's sampler chain for a request's settings, and a
GBNF grammar checked beside it (strict from the start, or armed by a lazy trigger)."""

from __future__ import annotations

import ctypes
from typing import TYPE_CHECKING, Any, cast

import llama_cpp

from localtools.engine.backend import CapturedStderr, log_mark, log_since
from localtools.engine.errors import GrammarError
from localtools.engine.types import SamplingParams
from localtools.gbnf import Grammar
from localtools.gbnf_prefix import forced_prefix

if TYPE_CHECKING:
    from localtools.engine.core import Engine


def seed_for(params: SamplingParams, config_seed: int | None) -> int:
    """The request's seed, else the engine's, else llama.cpp's random default."""
    if params.seed is not None:
        return params.seed & 0xFFFFFFFF
    if config_seed is not None and config_seed >= 0:
        return config_seed & 0xFFFFFFFF
    return llama_cpp.LLAMA_DEFAULT_SEED  # llama.cpp picks a random seed


def make_chain(params: SamplingParams, n_vocab: int, config_seed: int | None) -> Any:
    """The llama.cpp sampler chain for `params`, without any grammar (caller frees it)."""
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
                n_vocab, 64, params.repeat_penalty, params.frequency_penalty, params.presence_penalty
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
        add(chain, llama_cpp.llama_sampler_init_dist(seed_for(params, config_seed)))
    return chain


def compile_grammar(engine: Engine, grammar: Grammar) -> GrammarSampler:
    """Parse `grammar` with llama.cpp (GrammarError with the parser's message if it fails)."""
    gbnf = grammar.gbnf.encode("utf-8")
    mark = log_mark()
    captured = CapturedStderr()
    with captured:
        smpl = llama_cpp.llama_sampler_init_grammar(engine.vocab, gbnf, b"root")
    if not smpl:
        detail = (captured.text + "\n" + log_since(mark)).strip() or "unknown parse error"
        raise GrammarError(f"failed to parse grammar: {detail[-800:]}")
    return GrammarSampler(engine, smpl)


def jump_forward(engine: Engine, grammar: GrammarSampler, chain: Any, spec: Grammar, limit: int) -> list[int] | None:
    """The tokens of the text `spec` forces at the start (gbnf_prefix), accepted by the
    grammar and the sampler chain, to be evaluated with the prompt and emitted as the
    reply's first text instead of sampled one decode step each. [] when nothing is
    forced or it would not leave room for one sampled token within `limit`; None when
    the grammar refused a token after accepting others (compile it again)."""
    text = forced_prefix(spec.gbnf)
    if not text:
        return []
    # the last token is left to the model: its text may go on past the forced text in one
    # token (`{` vs `{"`), and a forced short token there changed what a small model wrote
    # next (a recursive schema's reply nested until max_tokens)
    tokens = engine.tokenize(text, add_bos=False, special=True)[:-1]
    if len(tokens) < 2 or len(tokens) >= limit:
        return []
    for i, tok in enumerate(tokens):
        if not engine.piece(tok) or not grammar.allows(tok):
            return None if i else []
        llama_cpp.llama_sampler_accept(grammar.smpl, tok)
    for tok in tokens:
        llama_cpp.llama_sampler_accept(chain, tok)
    return tokens


class GrammarSampler:
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
        self._view = np.frombuffer(  # type: ignore[call-overload]  # a ctypes array is a buffer; numpy's stubs omit it
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
        one.id = token  # type: ignore[assignment]  # llama-cpp-python types the field c_int32; ctypes takes an int
        one.logit = 0.0
        one.p = 0.0
        self._one_arr.size = 1
        self._one_arr.selected = -1
        self._one_arr.sorted = False
        llama_cpp.llama_sampler_apply(self.smpl, self._one_ref)
        return self._one[0].logit != float("-inf")

    def _fill_candidates(self, row: int) -> None:
        np = self._np
        logits = llama_cpp.llama_get_logits_ith(self._engine.ctx, row)
        self._view["id"] = self._ids
        self._view["logit"] = np.ctypeslib.as_array(logits, shape=(self._n_vocab,))
        self._view["p"] = 0.0
        self._arr.data = self._data
        self._arr.size = self._n_vocab
        self._arr.selected = -1
        self._arr.sorted = False

    def sample(self, chain: Any, row: int = -1) -> int | None:
        """Pick the next token under the grammar and accept it everywhere (None: dead end).

        `row` is the sequence's logits row in the last evaluated batch (-1: the last)."""
        self._fill_candidates(row)
        llama_cpp.llama_sampler_apply(chain, self._arr_ref)
        token = self._selected_id() if self._arr.selected >= 0 else -1
        if token < 0 or not self.allows(token):
            self._fill_candidates(row)
            llama_cpp.llama_sampler_apply(self.smpl, self._arr_ref)
            if not self._np.isfinite(self._view["logit"][: self._arr.size]).any():
                return None
            llama_cpp.llama_sampler_apply(chain, self._arr_ref)
            if self._arr.selected < 0:
                return None
            token = self._selected_id()
        llama_cpp.llama_sampler_accept(self.smpl, token)
        llama_cpp.llama_sampler_accept(chain, token)
        return token

    def _selected_id(self) -> int:
        """The token the last sampler selected. llama-cpp-python annotates the ctypes
        field as c_int32, but reading a ctypes field gives a Python int."""
        return cast(int, self._data[self._arr.selected].id)

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
            piece = engine.piece(tok)
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
