"""Fill-in-the-middle prompts as tokens: the model's FIM tokens (llama.cpp's view) around
the client's prefix and suffix, in the order `localtools.fim` lays out."""

from __future__ import annotations

from typing import TYPE_CHECKING

import llama_cpp

from localtools.fim import FimTokens, fim_prompt

if TYPE_CHECKING:
    from localtools.engine.core import Engine


def fim_tokens(engine: Engine) -> FimTokens | None:
    """The model's prefix/suffix/middle tokens (None: it cannot fill in the middle).

    llama.cpp takes them from the GGUF's `tokenizer.ggml.fim_*_token_id` keys, else
    recognises the usual token texts (`<|fim_prefix|>`, `<PRE>`, ...), as its server does."""
    vocab = engine.vocab
    return FimTokens.from_ids({
        "pre": llama_cpp.llama_vocab_fim_pre(vocab),
        "suf": llama_cpp.llama_vocab_fim_suf(vocab),
        "mid": llama_cpp.llama_vocab_fim_mid(vocab),
    })


def fim_prompt_tokens(engine: Engine, prefix: str, suffix: str, fim: FimTokens) -> list[int]:
    """The prompt tokens: [BOS] PRE prefix SUF suffix MID, the client's text taken as
    text (special=False: `<fim_suffix>` written in the code stays characters)."""
    adds_bos = bool(llama_cpp.llama_vocab_get_add_bos(engine.vocab))
    bos = engine.bos_token_id if adds_bos else None
    return fim_prompt(
        engine.tokenize(prefix, add_bos=False, special=False) if prefix else [],
        engine.tokenize(suffix, add_bos=False, special=False) if suffix else [],
        fim,
        bos=bos,
    )
