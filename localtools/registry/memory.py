"""How much memory a served model will take, before loading it: `serve --max-memory`.

The estimate is the GGUF file (the weights are mapped whole) plus the KV cache the
engine allocates: `n_ctx` tokens for each of `parallel` slots, K and V in f16 for every
layer's KV heads. llama.cpp's compute buffers (tens of MB for small models, a few
hundred for large ones) are not counted, so leave some headroom in the budget.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

_UNITS = {"": 1, "b": 1, "k": 10**3, "m": 10**6, "g": 10**9, "t": 10**12,
          "kb": 10**3, "mb": 10**6, "gb": 10**9, "tb": 10**12,
          "kib": 2**10, "mib": 2**20, "gib": 2**30, "tib": 2**40}


def parse_size(text: str) -> int:
    """Bytes from "2GiB", "1.5G", "800MB", "123456" (ValueError saying what is accepted)."""
    m = re.fullmatch(r"\s*([0-9]+(?:\.[0-9]+)?)\s*([a-zA-Z]*)\s*", text)
    unit = m.group(2).lower() if m else ""
    if m is None or unit not in _UNITS:
        raise ValueError(f"not a size: {text!r} (use bytes or a unit: 800MB, 2GiB, 1.5G)")
    size = int(float(m.group(1)) * _UNITS[unit])
    if size <= 0:
        raise ValueError(f"a memory budget must be more than 0 bytes, not {text!r}")
    return size


def format_size(n: int) -> str:
    for unit, scale in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if n >= scale:
            return f"{n / scale:.1f} {unit}"
    return f"{n} B"


def kv_bytes_per_token(meta: dict[str, Any]) -> int:
    """f16 K and V of one token in every layer (0 when the GGUF does not say)."""
    arch = str(meta.get("general.architecture", ""))

    def num(key: str, default: int = 0) -> int:
        value = meta.get(f"{arch}.{key}", default)
        if isinstance(value, list):  # per-layer head counts (some hybrid models)
            value = max(value) if value else default
        return int(value) if isinstance(value, (int, float)) else default

    layers, embd, heads = num("block_count"), num("embedding_length"), num("attention.head_count")
    if not (layers and embd and heads):
        return 0
    kv_heads = num("attention.head_count_kv", heads)
    k_dim = num("attention.key_length", embd // heads)
    v_dim = num("attention.value_length", embd // heads)
    return layers * kv_heads * (k_dim + v_dim) * 2


def estimate_bytes(path: Path, n_ctx: int, parallel: int) -> int:
    """The file plus the KV cache of `parallel` slots of `n_ctx` tokens (0: the
    model's training context)."""
    from localtools.gguf_meta import read_gguf_metadata

    meta = read_gguf_metadata(path)
    if n_ctx <= 0:
        n_ctx = int(meta.get(f"{meta.get('general.architecture', '')}.context_length", 4096) or 4096)
    return path.stat().st_size + kv_bytes_per_token(meta) * n_ctx * parallel


def estimate_local_model(source: str, n_ctx: int | None, parallel: int | None) -> int:
    """What `load_runtime(source, n_ctx=..., n_parallel=...)` will take; 0 when the
    model cannot be found (its load then fails with the real reason)."""
    from localtools.resolution.model import ModelNotFound, locate_model
    from localtools.runtime import context_shape

    try:
        where = locate_model(source)
        return estimate_bytes(where.path, *context_shape(where, n_ctx, parallel))
    except (ModelNotFound, OSError, ValueError):
        return 0
