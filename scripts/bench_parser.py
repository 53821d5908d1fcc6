"""Stream-parser cost: a 20,000-character arguments payload parsed token by
token against parsing it whole, for every dialect shape (goal: within 2x).

    python scripts/bench_parser.py [--chars 20000] [--token-chars 4] [--json]

Per-token parser cost as a share of decode time is measured on the real
model by scripts/bench.py; this script isolates the parser.
"""

from __future__ import annotations

import argparse
import json
import random
import string
import time

from localtools.dialects import get_dialect

TOOLS = [{"type": "function", "function": {"name": "write_file", "parameters": {
    "type": "object", "properties": {"path": {"type": "string"}, "content": {"type": "string"}},
    "required": ["path", "content"]}}}]


def payload(chars: int, seed: int = 0) -> str:
    rng = random.Random(seed)
    alphabet = string.ascii_letters + string.digits + "     \n\"\\{}[]<>:,é東"
    return "".join(rng.choice(alphabet) for _ in range(chars))


def model_text(dialect_name: str, chars: int) -> str:
    dialect = get_dialect(dialect_name)
    call = {"function": {"name": "write_file", "arguments": {"path": "a.txt", "content": payload(chars)}}}
    return dialect.format_calls([call])


def time_parse(dialect_name: str, pieces: list[str], repeat: int = 3) -> float:
    best = float("inf")
    dialect = get_dialect(dialect_name)
    for _ in range(repeat):
        parser = dialect.parser(TOOLS, "")
        start = time.perf_counter()
        for piece in pieces:
            parser.feed(piece)
        parser.finish()
        best = min(best, time.perf_counter() - start)
    return best


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--chars", type=int, default=20_000)
    ap.add_argument("--token-chars", type=int, default=4, help="characters per simulated token")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    rows = []
    for name in ("hermes", "mistral", "functionary-v3.1", "qwen3-coder", "llama3", "firefunction-v2"):
        text = model_text(name, args.chars)
        tokens = [text[i : i + args.token_chars] for i in range(0, len(text), args.token_chars)]
        whole = time_parse(name, [text])
        streamed = time_parse(name, tokens)
        rows.append({"dialect": name, "chars": len(text), "tokens": len(tokens),
                     "whole_ms": whole * 1e3, "streamed_ms": streamed * 1e3,
                     "ratio": streamed / whole, "us_per_token": streamed / len(tokens) * 1e6})
    if args.json:
        print(json.dumps(rows, indent=2))
        return
    print(f"{'dialect':18} {'chars':>7} {'tokens':>7} {'whole ms':>9} {'stream ms':>10} {'ratio':>6} {'µs/token':>9}")
    for r in rows:
        print(f"{r['dialect']:18} {r['chars']:7d} {r['tokens']:7d} {r['whole_ms']:9.2f} {r['streamed_ms']:10.2f} "
              f"{r['ratio']:6.2f} {r['us_per_token']:9.2f}")


if __name__ == "__main__":
    main()
