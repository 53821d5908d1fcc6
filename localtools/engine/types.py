"""The engine's public data types: how it is configured, what one generation asks for,
and what it reports back."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from localtools.gbnf import Grammar


@dataclass
class EngineConfig:
    model_path: str
    n_ctx: int = 4096  # 0 = model's training context
    n_threads: int | None = None  # None: one per physical core (engine/threads.py)
    n_gpu_layers: int = 0
    seed: int = -1
    n_batch: int = 512
    verbose: bool = False
    n_threads_batch: int | None = None  # prompt evaluation threads (None: n_threads)
    flash_attn: bool | None = None  # None: on for the CPU, llama.cpp's choice with GPU layers; False: reproducible at any length
    # KV states of earlier conversations kept in RAM, so switching back to one does not
    # evaluate it again (0 slots: off). Bounded by count and by total size.
    state_cache_slots: int = 4
    state_cache_mb: int = 512
    # sequence slots decoded together (continuous batching); n_ctx is per slot
    n_parallel: int = 1


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
    grammar: Grammar | None = None
    logprobs: int | None = None  # None: off; N: each sampled token's logprob and its N best alternatives
    # (text, bias): at the first sampled token only, `bias` is added to the logit of every
    # token that can begin `text` (decide mode's lean towards a call; dialects/decide.py).
    # Remote engines do not send it: llama-server's and vLLM's APIs bias every position.
    first_token_bias: tuple[str, float] | None = None


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
    logprobs: list[Any] = field(default_factory=list)  # engine.logprobs.TokenLogprob per sampled token, when asked
