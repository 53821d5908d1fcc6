"""Read a GGUF file's metadata without loading the model (pure Python, `struct` + mmap).

Used to inspect a model before committing memory to it: its architecture, size, context
length, quantization, chat templates and special tokens. Large arrays (the vocabulary,
merges, scores) are skipped: only their element type and count are kept.
"""

from __future__ import annotations

import mmap
import os
import re
import struct
from dataclasses import dataclass
from typing import Any

__all__ = [
    "GGUFArray",
    "GGUFLayout",
    "read_gguf_metadata",
    "read_gguf_layout",
    "read_array_items",
    "fim_token_ids",
    "summarize",
    "FILE_TYPES",
    "GGML_TYPES",
]

GGUF_MAGIC = b"GGUF"
SMALL_ARRAY = 64  # arrays up to this many elements are read in full

# GGUF value types -> (name, struct format or None for variable-size)
_VALUE_TYPES: dict[int, tuple[str, str | None]] = {
    0: ("uint8", "B"),
    1: ("int8", "b"),
    2: ("uint16", "H"),
    3: ("int16", "h"),
    4: ("uint32", "I"),
    5: ("int32", "i"),
    6: ("float32", "f"),
    7: ("bool", "?"),
    8: ("string", None),
    9: ("array", None),
    10: ("uint64", "Q"),
    11: ("int64", "q"),
    12: ("float64", "d"),
}
T_STRING, T_ARRAY = 8, 9

# llama_ftype (general.file_type) -> name
FILE_TYPES: dict[int, str] = {
    0: "F32", 1: "F16", 2: "Q4_0", 3: "Q4_1", 7: "Q8_0", 8: "Q5_0", 9: "Q5_1",
    10: "Q2_K", 11: "Q3_K_S", 12: "Q3_K_M", 13: "Q3_K_L", 14: "Q4_K_S", 15: "Q4_K_M",
    16: "Q5_K_S", 17: "Q5_K_M", 18: "Q6_K", 19: "IQ2_XXS", 20: "IQ2_XS", 21: "Q2_K_S",
    22: "IQ3_XS", 23: "IQ3_XXS", 24: "IQ1_S", 25: "IQ4_NL", 26: "IQ3_S", 27: "IQ3_M",
    28: "IQ2_S", 29: "IQ2_M", 30: "IQ4_XS", 31: "IQ1_M", 32: "BF16", 36: "TQ1_0",
    37: "TQ2_0", 38: "MXFP4_MOE", 39: "NVFP4", 40: "Q1_0",
}

# ggml_type (per tensor) -> name
GGML_TYPES: dict[int, str] = {
    0: "F32", 1: "F16", 2: "Q4_0", 3: "Q4_1", 6: "Q5_0", 7: "Q5_1", 8: "Q8_0", 9: "Q8_1",
    10: "Q2_K", 11: "Q3_K", 12: "Q4_K", 13: "Q5_K", 14: "Q6_K", 15: "Q8_K", 16: "IQ2_XXS",
    17: "IQ2_XS", 18: "IQ3_XXS", 19: "IQ1_S", 20: "IQ4_NL", 21: "IQ3_S", 22: "IQ2_S",
    23: "IQ4_XS", 24: "I8", 25: "I16", 26: "I32", 27: "I64", 28: "F64", 29: "IQ1_M",
    30: "BF16", 34: "TQ1_0", 35: "TQ2_0", 39: "MXFP4", 40: "NVFP4", 41: "Q1_0",
}


@dataclass(frozen=True)
class GGUFArray:
    """A large array left unread: its element type, length and where it starts."""

    element_type: str
    count: int
    offset: int  # file offset of the first element

    def __len__(self) -> int:
        return self.count

    def __repr__(self) -> str:
        return f"<array of {self.count} {self.element_type}>"


@dataclass(frozen=True)
class KVRecord:
    """One metadata entry and its byte span in the file (for rewriting tools)."""

    key: str
    value_type: int
    start: int  # offset of the key length field
    end: int  # offset just past the value


@dataclass(frozen=True)
class TensorInfo:
    name: str
    shape: tuple[int, ...]
    ggml_type: int
    offset: int  # relative to the data section


@dataclass
class GGUFLayout:
    """Everything before the tensor data: header, metadata records, tensor infos."""

    version: int
    byte_order: str  # "<" or ">"
    metadata: dict[str, Any]
    records: list[KVRecord]
    tensors: list[TensorInfo]
    kv_end: int  # offset where tensor infos begin
    infos_end: int  # offset just past the tensor infos
    data_offset: int  # aligned start of tensor data
    alignment: int
    file_size: int


class _Reader:
    def __init__(self, buf: Any, path: str, order: str):
        self.buf = buf
        self.path = path
        self.order = order
        self.pos = 0
        self.size = len(buf)

    def fail(self, what: str) -> ValueError:
        return ValueError(f"corrupt or truncated GGUF file {self.path}: {what} at byte {self.pos}")

    def unpack(self, fmt: str) -> Any:
        st = struct.Struct(self.order + fmt)
        if self.pos + st.size > self.size:
            raise self.fail("unexpected end of file")
        (value,) = st.unpack_from(self.buf, self.pos)
        self.pos += st.size
        return value

    def string(self) -> str:
        n = self.unpack("Q")
        if self.pos + n > self.size:
            raise self.fail(f"string of {n} bytes runs past the end")
        raw = bytes(self.buf[self.pos : self.pos + n])
        self.pos += n
        return raw.decode("utf-8", errors="replace")

    def skip_string(self) -> None:
        n = self.unpack("Q")
        if self.pos + n > self.size:
            raise self.fail(f"string of {n} bytes runs past the end")
        self.pos += n

    def value(self, vtype: int) -> Any:
        if vtype == T_STRING:
            return self.string()
        if vtype == T_ARRAY:
            return self.array()
        try:
            fmt = _VALUE_TYPES[vtype][1]
        except KeyError:
            raise self.fail(f"unknown value type {vtype}") from None
        return self.unpack(fmt)  # type: ignore[arg-type]

    def array(self) -> Any:
        etype = self.unpack("I")
        count = self.unpack("Q")
        if etype not in _VALUE_TYPES:
            raise self.fail(f"unknown array element type {etype}")
        name, fmt = _VALUE_TYPES[etype]
        start = self.pos
        if count <= SMALL_ARRAY:
            return [self.value(etype) for _ in range(count)]
        if fmt is not None:
            self.pos += count * struct.calcsize(fmt)
            if self.pos > self.size:
                raise self.fail("array runs past the end")
        elif etype == T_STRING:
            for _ in range(count):
                self.skip_string()
        else:  # arrays of arrays: walk them
            for _ in range(count):
                self.array()
        return GGUFArray(name, count, start)


def _open(path: str | os.PathLike[str]) -> tuple[Any, Any, str]:
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"no such file: {path}")
    fh = open(path, "rb")
    try:
        if os.path.getsize(path) < 24:
            raise ValueError(f"not a GGUF file (too small): {path}")
        buf = mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ)
    except BaseException:
        fh.close()
        raise
    return fh, buf, path


def read_gguf_layout(path: str | os.PathLike[str]) -> GGUFLayout:
    """Parse the header, every metadata record and the tensor infos of a GGUF (v2/v3)."""
    fh, buf, spath = _open(path)
    try:
        if buf[:4] != GGUF_MAGIC:
            raise ValueError(f"not a GGUF file (magic {bytes(buf[:4])!r}): {spath}")
        (version,) = struct.unpack_from("<I", buf, 4)
        order = "<"
        if version & 0xFFFF == 0:  # written big-endian
            (version,) = struct.unpack_from(">I", buf, 4)
            order = ">"
        if version not in (2, 3):
            raise ValueError(f"unsupported GGUF version {version} (2 and 3 are supported): {spath}")
        r = _Reader(buf, spath, order)
        r.pos = 8
        n_tensors = r.unpack("Q")
        n_kv = r.unpack("Q")
        if n_kv > r.size or n_tensors > r.size:
            raise r.fail("implausible counts")
        meta: dict[str, Any] = {}
        records: list[KVRecord] = []
        for _ in range(n_kv):
            start = r.pos
            key = r.string()
            vtype = r.unpack("I")
            meta[key] = r.value(vtype)
            records.append(KVRecord(key, vtype, start, r.pos))
        kv_end = r.pos
        tensors = []
        for _ in range(n_tensors):
            name = r.string()
            n_dims = r.unpack("I")
            if n_dims > 8:
                raise r.fail(f"tensor {name!r} has {n_dims} dimensions")
            shape = tuple(r.unpack("Q") for _ in range(n_dims))
            ggml_type = r.unpack("I")
            offset = r.unpack("Q")
            tensors.append(TensorInfo(name, shape, ggml_type, offset))
        alignment = meta.get("general.alignment", 32)
        if not isinstance(alignment, int) or alignment <= 0:
            alignment = 32
        data_offset = -(-r.pos // alignment) * alignment
        return GGUFLayout(version, order, meta, records, tensors, kv_end, r.pos, data_offset, alignment, r.size)
    finally:
        buf.close()
        fh.close()


def read_gguf_metadata(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The key/value metadata of a GGUF file. Arrays longer than 64 are `GGUFArray`s."""
    return read_gguf_layout(path).metadata


def read_array_items(path: str | os.PathLike[str], array: GGUFArray, indices: set[int]) -> dict[int, Any]:
    """Read selected elements of a large array (e.g. token texts by id)."""
    wanted = {i for i in indices if 0 <= i < array.count}
    if not wanted:
        return {}
    etype = next(t for t, (name, _) in _VALUE_TYPES.items() if name == array.element_type)
    fh, buf, spath = _open(path)
    try:
        (version,) = struct.unpack_from("<I", buf, 4)
        r = _Reader(buf, spath, "<" if version & 0xFFFF else ">")
        r.pos = array.offset
        out: dict[int, Any] = {}
        fmt = _VALUE_TYPES[etype][1]
        if fmt is not None:
            size = struct.calcsize(fmt)
            for i in wanted:
                r.pos = array.offset + i * size
                out[i] = r.unpack(fmt)
            return out
        last = max(wanted)
        for i in range(last + 1):
            if i in wanted:
                out[i] = r.value(etype)
            elif etype == T_STRING:
                r.skip_string()
            else:
                r.array()
        return out
    finally:
        buf.close()
        fh.close()


# --------------------------------------------------------------------------
# Fill-in-the-middle tokens
# --------------------------------------------------------------------------

# role -> the keys that declare its token id, newest first (llama.cpp reads both; the
# prefix/suffix/middle names are the older spelling that gguf-py keeps as deprecated)
FIM_KEYS: dict[str, tuple[str, ...]] = {
    "pre": ("tokenizer.ggml.fim_pre_token_id", "tokenizer.ggml.prefix_token_id"),
    "suf": ("tokenizer.ggml.fim_suf_token_id", "tokenizer.ggml.suffix_token_id"),
    "mid": ("tokenizer.ggml.fim_mid_token_id", "tokenizer.ggml.middle_token_id"),
    "pad": ("tokenizer.ggml.fim_pad_token_id",),
    "rep": ("tokenizer.ggml.fim_rep_token_id",),
    "sep": ("tokenizer.ggml.fim_sep_token_id",),
}


def fim_token_ids(meta: dict[str, Any]) -> dict[str, int]:
    """The FIM token ids the metadata declares: {"pre": id, "suf": id, "mid": id, ...}.

    Only declared ids: llama.cpp also recognises some FIM tokens by their text
    (`<|fim_prefix|>`, `<PRE>`, ...) when the keys are missing; the engine reports that
    fuller view of a loaded model. A model does fill-in-the-middle with pre, suf and mid.
    """
    out: dict[str, int] = {}
    for role, keys in FIM_KEYS.items():
        for key in keys:
            value = meta.get(key)
            if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
                out[role] = value
                break
    return out


# --------------------------------------------------------------------------
# Summary
# --------------------------------------------------------------------------

_SPECIAL_ID = re.compile(r"^tokenizer\.ggml\.(\w+)_token_id$")


def _count_label(n: int) -> str:
    for unit, scale in (("T", 10**12), ("B", 10**9), ("M", 10**6), ("K", 10**3)):
        if n >= scale:
            value = n / scale
            return f"{value:.1f}".rstrip("0").rstrip(".") + unit
    return str(n)


def summarize(meta: dict[str, Any], path: str | os.PathLike[str]) -> dict[str, Any]:
    """The facts a user wants about a GGUF, as plain JSON-friendly values."""
    layout = None
    try:
        layout = read_gguf_layout(path)
    except (OSError, ValueError):
        pass
    arch = meta.get("general.architecture")
    n_params = None
    if layout is not None and layout.tensors:
        n_params = 0
        for t in layout.tensors:
            count = 1
            for d in t.shape:
                count *= d
            n_params += count
    label = meta.get("general.size_label")
    parameters = label if isinstance(label, str) and label else (_count_label(n_params) if n_params else None)

    file_type = meta.get("general.file_type")
    quant = FILE_TYPES.get(file_type) if isinstance(file_type, int) else None
    if quant is None and layout is not None and layout.tensors:
        counts: dict[int, int] = {}
        for t in layout.tensors:
            if len(t.shape) >= 2:  # weight matrices carry the quantization
                counts[t.ggml_type] = counts.get(t.ggml_type, 0) + 1
        if counts:
            quant = GGML_TYPES.get(max(counts, key=counts.get), None)  # type: ignore[arg-type]

    templates: dict[str, str] = {}
    for key, value in meta.items():
        if key == "tokenizer.chat_template" and isinstance(value, str):
            templates["default"] = value
        elif key.startswith("tokenizer.chat_template.") and isinstance(value, str):
            templates[key[len("tokenizer.chat_template."):]] = value

    tokens = meta.get("tokenizer.ggml.tokens")
    ids = {m.group(1): v for k, v in meta.items() if (m := _SPECIAL_ID.match(k)) and isinstance(v, int)}
    texts: dict[int, Any] = {}
    if isinstance(tokens, GGUFArray):
        try:
            texts = read_array_items(path, tokens, set(ids.values()))
        except (OSError, ValueError):
            texts = {}
    elif isinstance(tokens, list):
        texts = {i: tokens[i] for i in ids.values() if 0 <= i < len(tokens)}
    special = {name: {"id": tid, "text": texts.get(tid)} for name, tid in sorted(ids.items())}

    ctx = meta.get(f"{arch}.context_length") if arch else None
    return {
        "path": os.fspath(path),
        "file_size": os.path.getsize(path),
        "gguf_version": layout.version if layout else None,
        "architecture": arch,
        "name": meta.get("general.name"),
        "parameters": parameters,
        "parameter_count": n_params,
        "context_length": ctx if isinstance(ctx, int) else None,
        "quantization": quant,
        "file_type": file_type if isinstance(file_type, int) else None,
        "tensor_count": len(layout.tensors) if layout else None,
        "vocab_size": len(tokens) if tokens is not None else None,
        "tokenizer": meta.get("tokenizer.ggml.model"),
        "add_bos_token": meta.get("tokenizer.ggml.add_bos_token"),
        "chat_templates": templates,
        "special_tokens": special,
        "fim_tokens": fim_token_ids(meta),
    }

