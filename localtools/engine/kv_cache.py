"""What the KV cache holds, and keeping it useful across requests.

Two savings: a new prompt that shares a prefix with the cached tokens evaluates only
what follows (prefix reuse), and the states of conversations switched away from are
kept in RAM (saved-state slots), so two users taking turns do not re-evaluate each other.
"""

from __future__ import annotations

import ctypes
import logging
from dataclasses import dataclass
from typing import Any

import llama_cpp

log = logging.getLogger("localtools.engine")

MIN_STATE_TOKENS = 32  # smaller savings are not worth a state copy


@dataclass
class SavedState:
    """The KV state of one sequence (llama_state_seq_get_data) and the tokens it holds."""

    tokens: list[int]
    data: Any  # ctypes uint8 array
    size: int


def common_prefix(a: list[int], b: list[int], limit: int) -> int:
    """Length of the common prefix of `a` and `b`, at most `limit`."""
    n = min(len(a), len(b), limit)
    i = 0
    while i < n and a[i] == b[i]:
        i += 1
    return i


class KVCache:
    """The tokens whose K/V sequence `seq_id` holds, in order, plus saved states."""

    def __init__(self, ctx: Any, memory: Any, slots: int, max_bytes: int, seq_id: int = 0):
        self._ctx = ctx
        self._memory = memory
        self.seq_id = seq_id
        self.tokens: list[int] = []
        self.states: list[SavedState] = []  # most recently used last
        self.slots = max(0, slots)
        self.max_bytes = max(0, max_bytes)

    def clear(self) -> None:
        """Forget the cache and the saved states."""
        llama_cpp.llama_memory_clear(self._memory, True)
        self.tokens = []
        self.states = []

    def switch_state(self, tokens: list[int]) -> None:
        """Before a prompt that drops much of the cache: keep the cache's state, and bring
        back a saved one that shares more with the prompt (two users taking turns)."""
        if not self.slots:
            return
        limit = len(tokens) - 1
        current = common_prefix(self.tokens, tokens, limit)
        if len(self.tokens) - current < MIN_STATE_TOKENS:
            return  # the cache mostly stays: nothing worth saving
        best, best_len = None, current
        for st in self.states:
            n = common_prefix(st.tokens, tokens, limit)
            if n > best_len:
                best, best_len = st, n
        restore = best if best is not None and best_len >= current + MIN_STATE_TOKENS else None
        if restore is not None:
            self.states.remove(restore)  # before saving: saving may evict it (least recently used)
        self._save_state()
        if restore is not None:
            self._restore_state(restore)

    def _save_state(self) -> None:
        ctx = self._ctx
        size = llama_cpp.llama_state_seq_get_size(ctx, self.seq_id)
        if size <= 0 or size > self.max_bytes:
            return
        buf = (ctypes.c_uint8 * size)()
        written = llama_cpp.llama_state_seq_get_data(ctx, buf, size, self.seq_id)
        if written <= 0:
            return
        self.states.append(SavedState(list(self.tokens), buf, written))
        total = sum(st.size for st in self.states)
        while self.states and (len(self.states) > self.slots or total > self.max_bytes):
            total -= self.states.pop(0).size  # least recently used first

    def _restore_state(self, st: SavedState) -> None:
        """Load a saved state (already taken out of `states`) into the context."""
        llama_cpp.llama_memory_seq_rm(self._memory, self.seq_id, -1, -1)
        if llama_cpp.llama_state_seq_set_data(self._ctx, st.data, st.size, self.seq_id) == 0:
            log.warning("could not restore a saved KV state; evaluating the prompt again")
            self.clear()
            return
        self.tokens = list(st.tokens)

    def reuse_prefix(self, tokens: list[int]) -> int:
        """Keep the longest cached prefix of `tokens` (leaving >= 1 token to evaluate)."""
        cached = self.tokens
        limit = min(len(cached), len(tokens) - 1)
        n = 0
        while n < limit and cached[n] == tokens[n]:
            n += 1
        if n < len(cached):
            if not llama_cpp.llama_memory_seq_rm(self._memory, -1, n, -1):
                # e.g. recurrent models cannot drop a partial sequence
                llama_cpp.llama_memory_clear(self._memory, True)
                n = 0
            del self.tokens[n:]
        return n
