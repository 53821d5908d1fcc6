"""What each sequence slot's KV cache holds, and keeping it useful across requests.

Two savings: a new prompt that shares a prefix with a slot's cached tokens evaluates
only what follows (prefix reuse), and the states of conversations switched away from
are kept in RAM (saved states, shared by all slots), so users taking turns do not
re-evaluate each other.

The reproducibility rule (README, "Reproducible output"): llama.cpp's K/V values for a
token depend on how it was evaluated. A token evaluated alone (one token of its sequence
in the step, as every generated token is) gets slightly different numbers than the same
token inside a multi-token prompt chunk, while chunk sizes of 2 or more agree bitwise.
So a slot reuses its cache only up to `n_exact`, the tokens evaluated in multi-token
chunks, and always re-evaluates at least 2 prompt tokens: the logits that pick the first
reply token then come from the same computation whatever the cache held before.

With flash attention the CPU kernel takes another path for chunks of 64 tokens or more
(ggml's query tile) than for 2-63, so there a prompt of 64+ tokens is evaluated, and
re-evaluated, only in chunks of 64+ (its `chunk_class` is `FLASH_MIN_CHUNK`), a shorter
one in one chunk (class 2, as without flash attention); a slot remembers the class of its
exact prefix, and a prompt reuses it only when the classes agree.
"""

from __future__ import annotations

import ctypes
import logging
from dataclasses import dataclass
from typing import Any

import llama_cpp

log = logging.getLogger("localtools.engine")

MIN_STATE_TOKENS = 32  # smaller savings are not worth a state copy
MIN_TAIL = 2  # prompt tokens always evaluated again (see the module docstring)
FLASH_MIN_CHUNK = 64  # the same with flash attention (GGML_FA_TILE_Q)
# With flash attention on the CPU, one token alone (one sequence decoding) against 512+
# KV cells, which llama.cpp pads a context past 256 tokens to, has its sum split across
# the threads: its numbers then depend on the thread count (threads.ThreadGovernor.hold)
FLASH_SPLIT_FROM = 256


@dataclass
class SavedState:
    """The KV state of one sequence (llama_state_seq_get_data) and the tokens it holds."""

    tokens: list[int]
    n_exact: int  # leading tokens whose K/V came from multi-token chunks
    exact_class: int  # the smallest chunk those came from (chunk_class)
    data: Any  # ctypes uint8 array
    size: int


def chunk_class(n_prompt: int, flash_min: int) -> int:
    """The smallest chunk a prompt of `n_prompt` tokens is evaluated in: `flash_min` for a
    long one with flash attention, else MIN_TAIL (`flash_min` is MIN_TAIL without it)."""
    return flash_min if n_prompt >= flash_min else MIN_TAIL


def common_prefix(a: list[int], b: list[int], limit: int) -> int:
    """Length of the common prefix of `a` and `b`, at most `limit`."""
    n = min(len(a), len(b), limit)
    i = 0
    while i < n and a[i] == b[i]:
        i += 1
    return i


def reusable(tokens: list[int], n_exact: int, exact_class: int, prompt: list[int], flash_min: int = MIN_TAIL) -> int:
    """How many cached tokens a prompt may keep under the reproducibility rule."""
    need = chunk_class(len(prompt), flash_min)
    if exact_class != need:
        return 0
    return common_prefix(tokens, prompt, min(n_exact, len(prompt) - need))


class StateStore:
    """Saved KV states of sequences, most recently used last, bounded by count and bytes."""

    def __init__(self, ctx: Any, slots: int, max_bytes: int, flash_min: int = MIN_TAIL):
        self._ctx = ctx
        self.flash_min = flash_min  # a long prompt's smallest chunk (FLASH_MIN_CHUNK with flash attention)
        self.states: list[SavedState] = []
        self.slots = max(0, slots)
        self.max_bytes = max(0, max_bytes)

    def clear(self) -> None:
        self.states = []

    def best(self, prompt: list[int], at_least: int) -> tuple[SavedState | None, int]:
        """The saved state sharing the most reusable tokens with `prompt` (> at_least)."""
        best, best_len = None, at_least
        for st in self.states:
            n = reusable(st.tokens, st.n_exact, st.exact_class, prompt, self.flash_min)
            if n > best_len:
                best, best_len = st, n
        return best, best_len

    def save(self, seq_id: int, tokens: list[int], n_exact: int, exact_class: int) -> None:
        ctx = self._ctx
        size = llama_cpp.llama_state_seq_get_size(ctx, seq_id)
        if size <= 0 or size > self.max_bytes:
            return
        buf = (ctypes.c_uint8 * size)()
        written = llama_cpp.llama_state_seq_get_data(ctx, buf, size, seq_id)
        if written <= 0:
            return
        self.states.append(SavedState(list(tokens), n_exact, exact_class, buf, written))
        total = sum(st.size for st in self.states)
        while self.states and (len(self.states) > self.slots or total > self.max_bytes):
            total -= self.states.pop(0).size  # least recently used first


class SlotCache:
    """The tokens whose K/V sequence `seq_id` holds, in order."""

    def __init__(self, ctx: Any, memory: Any, store: StateStore, seq_id: int = 0):
        self._ctx = ctx
        self._memory = memory
        self.store = store
        self.seq_id = seq_id
        self.tokens: list[int] = []
        self.n_exact = 0  # leading tokens evaluated in multi-token chunks
        self.exact_class = MIN_TAIL  # the smallest chunk those came from (chunk_class)

    def clear(self) -> None:
        """Forget this sequence's cache."""
        llama_cpp.llama_memory_seq_rm(self._memory, self.seq_id, -1, -1)
        self.forget()

    def forget(self) -> None:
        """Hold nothing (the KV cells are already cleared)."""
        self.tokens = []
        self.n_exact = 0
        self.exact_class = MIN_TAIL

    def chunk_for(self, n_prompt: int) -> int:
        """The smallest chunk a prompt of `n_prompt` tokens is evaluated in."""
        return chunk_class(n_prompt, self.store.flash_min)

    def reusable(self, prompt: list[int]) -> int:
        return reusable(self.tokens, self.n_exact, self.exact_class, prompt, self.store.flash_min)

    def switch_state(self, prompt: list[int]) -> None:
        """Before a prompt: keep the cache's state when the prompt drops much of it, and
        bring back a saved one that shares clearly more with the prompt (users taking
        turns; a conversation whose slot another request has taken meanwhile)."""
        store = self.store
        if not store.slots:
            return
        current = self.reusable(prompt)
        # a slot that would keep its cache (an empty one too) still looks: the prompt's
        # conversation may have been saved from another slot
        best, best_len = store.best(prompt, current)
        if best is not None and best_len < current + MIN_STATE_TOKENS:
            best = None
        losing = len(self.tokens) - current >= MIN_STATE_TOKENS
        if best is not None:
            store.states.remove(best)  # before saving: saving may evict it (least recently used)
        if losing:
            store.save(self.seq_id, self.tokens, self.n_exact, self.exact_class)
        if best is not None:
            self._restore(best)

    def _restore(self, st: SavedState) -> None:
        """Load a saved state (already taken out of the store) into this sequence."""
        llama_cpp.llama_memory_seq_rm(self._memory, self.seq_id, -1, -1)
        if llama_cpp.llama_state_seq_set_data(self._ctx, st.data, st.size, self.seq_id) == 0:
            log.warning("could not restore a saved KV state; evaluating the prompt again")
            self.clear()
            return
        self.tokens = list(st.tokens)
        self.n_exact = st.n_exact
        self.exact_class = st.exact_class

    def reuse_prefix(self, prompt: list[int]) -> int:
        """Keep the longest reusable cached prefix of `prompt`; drop the rest."""
        n = self.reusable(prompt)
        if n < len(self.tokens):
            self.truncate(n)
            if len(self.tokens) != n:
                n = 0
        return n

    def copy_prefix_from(self, donor: SlotCache, n: int) -> None:
        """Hold the first `n` tokens of another slot's cache instead of this one's.

        With split KV streams llama.cpp copies a whole stream (done at the next decode,
        before that batch writes anything, so a donor that is busy decoding is fine),
        then the tail is dropped: a memory copy instead of evaluating `n` tokens again.
        """
        llama_cpp.llama_memory_seq_rm(self._memory, self.seq_id, -1, -1)
        llama_cpp.llama_memory_seq_cp(self._memory, donor.seq_id, self.seq_id, -1, -1)
        self.tokens = list(donor.tokens)
        self.n_exact = donor.n_exact
        self.exact_class = donor.exact_class
        self.truncate(n)

    def truncate(self, n: int) -> None:
        """Drop cached tokens from position `n` on."""
        if not llama_cpp.llama_memory_seq_rm(self._memory, self.seq_id, n, -1):
            # e.g. recurrent models cannot drop a partial sequence
            self.clear()
            return
        del self.tokens[n:]
        self.n_exact = min(self.n_exact, n)

    def extend(self, tokens: list[int], exact: bool, chunk: int = MIN_TAIL) -> None:
        """Record tokens just evaluated (`exact`: in a multi-token chunk of this sequence
        of the prompt's `chunk` class)."""
        if self.n_exact == 0:
            self.exact_class = chunk
        if exact and self.n_exact == len(self.tokens) and chunk == self.exact_class:
            self.n_exact += len(tokens)
        self.tokens.extend(tokens)
