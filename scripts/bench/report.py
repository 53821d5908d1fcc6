"""The plain-text table a benchmark run prints.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any


def _fmt(value: Any, spec: str) -> str:
    return "n/a" if value is None else format(value, spec)


def format_table(result: dict[str, Any]) -> str:
    """A plain-text report of `run_benchmark`'s result."""
    over, conv, gram = result["overhead"], result["conversation"], result["grammar"]
    lines = [
        f"localtools benchmark — {result['model']} ({Path(result['model_file']).name}), dialect {result['dialect']}",
        f"llama-cpp-python {result['llama_cpp_python']}, {result['cpus']} CPUs, {result['threads']} thread(s), "
        f"{'quick' if result['quick'] else 'full'} run, {result['seconds']:.0f} s",
        "",
        f"{'measure':42} {'localtools':>12} {'raw llama-cpp':>14} {'ratio':>7}",
        f"{'decode tok/s (streaming, 3 tools offered)':42} {over['server_decode_tps']:12.1f} "
        f"{over['raw_decode_tps']:14.1f} {over['decode_ratio']:7.3f}",
        f"{'time to first token, ms (' + str(over['prompt_tokens']) + '-token prompt)':42} "
        f"{over['server_ttft_s'] * 1000:12.0f} {over['raw_ttft_s'] * 1000:14.0f} {over['ttft_ratio']:7.3f}",
        "",
        f"{'turn':>4} {'kind':>7} {'prompt tokens':>14} {'added':>6} {'evaluated':>10} {'prompt ms':>10}",
    ]
    for row, added in zip(conv["turns"], conv["turn_added_tokens"]):
        lines.append(f"{row['turn']:4d} {row['kind']:>7} {row['prompt_tokens']:14d} {added:6d} "
                     f"{row['evaluated_tokens']:10d} {row['prompt_s'] * 1000:10.0f}")
    if conv.get("cold_last_prompt_tokens"):
        lines.append(f"{'last prompt from an empty cache':27} {conv['cold_last_prompt_tokens']:6d} "
                     f"{conv['cold_last_prompt_tokens']:10d} {conv['cold_last_prompt_s'] * 1000:10.0f}")
    switching = result.get("switching") or {}
    if switching:
        lines += ["", "two conversations taking turns (A B A B A B): prompt tokens evaluated, prompt ms"]
        for label, info in switching.items():
            pairs = ", ".join(f"{e}/{p} ({t * 1000:.0f})" for e, p, t in
                              zip(info["evaluated_tokens"], info["prompt_tokens"], info["prompt_s"]))
            lines.append(f"  {label.replace('_', ' '):18} {pairs}")
    lines += [
        "",
        f"{'grammar-constrained decode tok/s':42} {_fmt(gram.get('constrained_decode_tps'), '12.1f')}",
        f"{'free decode tok/s':42} {_fmt(gram.get('free_decode_tps'), '12.1f')}",
        f"{'grammar ratio (constrained / free)':42} {_fmt(gram.get('grammar_ratio'), '12.3f')}",
    ]
    for label, info in (gram.get("parser") or {}).items():
        lines.append(f"{'stream parser, ' + label + ' (µs/piece; share)':42} {info['parser_us_per_piece']:12.1f} "
                     f"{info['share'] * 100:13.2f}%")
    lines += [
        f"{'server peak RSS, MiB':42} {_fmt(result.get('peak_rss_mb'), '12.0f')}",
        f"{'serve ready (load + bind), s':42} {_fmt(result.get('serve_ready_s'), '12.1f')}",
    ]
    return "\n".join(lines)
