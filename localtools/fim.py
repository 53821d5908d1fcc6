"""Fill-in-the-middle prompts: prefix and suffix around a model's FIM tokens.

A code model trained for FIM (Qwen2.5-Coder, StarCoder, CodeLlama, DeepSeek-Coder,
Granite, ...) declares three special tokens in its GGUF. It was trained on
prefix-suffix-middle (PSM) order, the one llama.cpp's server uses by default:

    [BOS] <FIM_PRE> prefix <FIM_SUF> suffix <FIM_MID>   -> the model writes the middle

The prefix and suffix are the client's text, tokenized without parsing special
tokens (text that looks like `<fim_suffix>` stays text). Repo-level tokens
(FIM_REP / FIM_SEP with a project and file names) are not written: an OpenAI
`/v1/completions` request carries neither, and a placeholder name only adds noise.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class FimTokens:
    """The FIM token ids of one model (llama.cpp's view: metadata keys, else token text)."""

    pre: int
    suf: int
    mid: int

    @classmethod
    def from_ids(cls, ids: dict[str, int]) -> FimTokens | None:
        """From {"pre", "suf", "mid", ...} ids (negative or missing: no FIM)."""
        roles = [ids.get(role, -1) for role in ("pre", "suf", "mid")]
        if any(tok is None or tok < 0 for tok in roles):
            return None
        return cls(*roles)


def fim_prompt(prefix: list[int], suffix: list[int], fim: FimTokens, bos: int | None = None) -> list[int]:
    """Prompt tokens in PSM order; `bos` first when the model adds one."""
    head = [bos] if bos is not None and bos >= 0 else []
    return head + [fim.pre, *prefix, fim.suf, *suffix, fim.mid]
