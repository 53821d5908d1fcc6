"""Tokenizing through a llama.cpp vocabulary, shared by `Engine` and `Vocab`.

Both the in-process engine and the weightless tokenizer in front of a remote engine must
turn a prompt into exactly the same tokens (token counts and prefix reuse depend on it),
so the one implementation lives here.
"""

from __future__ import annotations

from typing import Any

import llama_cpp


class VocabTokenizer:
    """Tokenize with `self._vocab`; the class using it sets `_vocab`, `_add_bos`, `bos_token_id`."""

    _vocab: Any
    _add_bos: bool
    bos_token_id: int
    eos_token_id: int
    bos_token: str
    eos_token: str

    def _read_special_tokens(self) -> None:
        """BOS/EOS ids and texts, and whether the model wants BOS added, from `_vocab`."""
        bos = llama_cpp.llama_vocab_bos(self._vocab)
        eos = llama_cpp.llama_vocab_eos(self._vocab)
        self.bos_token_id = bos
        self.eos_token_id = eos
        self.bos_token = self._token_text(bos) if bos >= 0 else ""
        self.eos_token = self._token_text(eos) if eos >= 0 else ""
        self._add_bos = bool(llama_cpp.llama_vocab_get_add_bos(self._vocab)) and bos >= 0

    def _token_text(self, token: int) -> str:
        raw = llama_cpp.llama_vocab_get_text(self._vocab, token)
        return raw.decode("utf-8", errors="replace") if raw else ""

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
        return list(arr[:n])

    def count_tokens(self, text: str) -> int:
        """Number of tokens of `text` (no BOS added, special tokens parsed)."""
        return len(self.tokenize(text))

    def tokenize_prompt(self, prompt: str) -> list[int]:
        """The tokens the engine evaluates for `prompt`.

        Rendered chat templates usually write BOS themselves; BOS is added only when the
        model asks for one (tokenizer.ggml.add_bos_token) and the text does not start with it.
        """
        tokens = self.tokenize(prompt, add_bos=False, special=True)
        if self._add_bos and (not tokens or tokens[0] != self.bos_token_id):
            tokens.insert(0, self.bos_token_id)
        return tokens
