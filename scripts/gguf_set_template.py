#!/usr/bin/env python3
"""Copy a GGUF with its chat template replaced: `gguf_set_template.py MODEL OUT TEMPLATE_FILE`.

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


def _string_kv(key: str, value: str, order: str) -> bytes:
    k, v = key.encode("utf-8"), value.encode("utf-8")
    return (
        struct.pack(order + "Q", len(k)) + k
        + struct.pack(order + "I", T_STRING)
        + struct.pack(order + "Q", len(v)) + v
    )


def set_chat_template(src: str | os.PathLike[str], dst: str | os.PathLike[str], template: str | None,
                      key: str = TEMPLATE_KEY) -> None:
    """Write `dst`: a copy of GGUF `src` whose `key` (default tokenizer.chat_template) is
    `template` (added if missing; removed when `template` is None)."""
    if os.path.abspath(src) == os.path.abspath(dst):
        raise ValueError("source and destination must differ")
    layout = read_gguf_layout(src)
    order = layout.byte_order
    with open(src, "rb") as fin:
        head = fin.read(layout.infos_end)
        records = [r for r in layout.records if r.key != key]
        parts = [head[r.start : r.end] for r in records]
        if template is not None:
            parts.append(_string_kv(key, template, order))
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
