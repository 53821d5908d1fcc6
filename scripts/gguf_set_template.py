#!/usr/bin/env python3
"""Copy a GGUF with its chat template replaced: `gguf_set_template.py MODEL OUT TEMPLATE_FILE`.

`set_metadata` rewrites other keys the same way (tests give a copy FIM token ids).

Tests and users run the same weights under another model family's template (another
tool-call dialect) this way. Only the metadata block is rewritten; tensor data is copied
byte for byte, so copying a 100 MB model takes well under a second.
"""

from __future__ import annotations

import argparse
import os
import shutil
import struct
import sys
from pathlib import Path

from localtools.gguf_meta import T_STRING, read_gguf_layout

TEMPLATE_KEY = "tokenizer.chat_template"


T_UINT32 = 4


def _kv(key: str, value: str | int, order: str) -> bytes:
    """One metadata record: a string, or an unsigned 32-bit integer (token ids)."""
    k = key.encode("utf-8")
    head = struct.pack(order + "Q", len(k)) + k
    if isinstance(value, str):
        v = value.encode("utf-8")
        return head + struct.pack(order + "I", T_STRING) + struct.pack(order + "Q", len(v)) + v
    if isinstance(value, bool) or not 0 <= value < 2**32:
        raise ValueError(f"{key}: only strings and uint32 values can be written, got {value!r}")
    return head + struct.pack(order + "I", T_UINT32) + struct.pack(order + "I", value)


def set_metadata(src: str | os.PathLike[str], dst: str | os.PathLike[str],
                 updates: dict[str, str | int | None]) -> None:
    """Write `dst`: a copy of GGUF `src` with each key of `updates` set to its value
    (a string or a uint32; added if missing) or removed (None). Tensor data is copied as is."""
    if os.path.abspath(src) == os.path.abspath(dst):
        raise ValueError("source and destination must differ")
    layout = read_gguf_layout(src)
    order = layout.byte_order
    with open(src, "rb") as fin:
        head = fin.read(layout.infos_end)
        records = [r for r in layout.records if r.key not in updates]
        parts = [head[r.start : r.end] for r in records]
        parts += [_kv(key, value, order) for key, value in updates.items() if value is not None]
        header = (
            b"GGUF"
            + struct.pack(order + "I", layout.version)
            + struct.pack(order + "Q", len(layout.tensors))
            + struct.pack(order + "Q", len(parts))
        )
        tensor_infos = head[layout.kv_end : layout.infos_end]
        body = header + b"".join(parts) + tensor_infos
        pad = (-len(body)) % layout.alignment
        tmp = Path(f"{os.fspath(dst)}.partial")
        try:
            with open(tmp, "wb") as fout:
                fout.write(body + b"\0" * pad)
                fin.seek(layout.data_offset)
                shutil.copyfileobj(fin, fout, 16 * 1024 * 1024)
            os.replace(tmp, dst)
        finally:
            if tmp.exists():
                tmp.unlink()


def set_chat_template(src: str | os.PathLike[str], dst: str | os.PathLike[str], template: str | None,
                      key: str = TEMPLATE_KEY) -> None:
    """Write `dst`: a copy of GGUF `src` whose `key` (default tokenizer.chat_template) is
    `template` (added if missing; removed when `template` is None)."""
    set_metadata(src, dst, {key: template})


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("model", help="source GGUF")
    ap.add_argument("out", help="destination GGUF")
    ap.add_argument("template_file", help="Jinja chat template file ('-' for stdin)")
    ap.add_argument("--key", default=TEMPLATE_KEY, help="metadata key (e.g. tokenizer.chat_template.tool_use)")
    args = ap.parse_args(argv)
    text = sys.stdin.read() if args.template_file == "-" else Path(args.template_file).read_text(encoding="utf-8")
    try:
        set_chat_template(args.model, args.out, text, key=args.key)
    except (OSError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
