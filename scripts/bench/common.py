"""What every benchmark part shares: the tools and prompts it sends, its settings, one
streamed sample, and medians.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field
from typing import Any, Callable

Progress = Callable[[str], None]

BENCH_TOOLS: list[dict[str, Any]] = [
    {
        "type": "function",
        "function": {
            "name": "get_weather",
            "description": "Current weather for a city.",
            "parameters": {
                "type": "object",
                "properties": {
                    "city": {"type": "string", "description": "City name"},
                    "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
                },
                "required": ["city"],
            },
        },
    },
    {
        "type": "function",
        "function": {
            "name": "search_web",
            "description": "Search the web and return the top results.",
            "parameters": {
                "type": "object",
                "properties": {"query": {"type": "string"}, "max_results": {"type": "integer"}},
                "required": ["query"],
            },
        },
    },
    {
        "type": "function",
        "function": {
            "name": "write_note",
            "description": "Save a note with a title and a body of text.",
            "parameters": {
                "type": "object",
                "properties": {"title": {"type": "string"}, "body": {"type": "string"}},
                "required": ["title", "body"],
            },
        },
    },
]

STORY_REQUEST = "Write a long story about a dragon who learns to bake bread. Use many paragraphs."

TURN_QUESTIONS = [
    "What is the weather in Paris?",
    "And what is the weather in Tokyo?",
    "Search the web for bread recipes.",
    "Save a note titled shopping with the body: flour, yeast, salt.",
    "What is the weather in Lima?",
    "Search the web for dragon stories.",
]


@dataclass
class BenchSettings:
    """What one benchmark run does (quick mode: fewer repeats, shorter outputs)."""

    max_tokens: int = 192
    repeats: int = 9  # interleaved server/raw pairs (odd: a clean median)
    turns: int = 6  # user turns; each is two requests (the call, then the answer)
    grammar_tokens: int = 128
    grammar_repeats: int = 5
    threads: int | None = None  # None: what the engine picks by default (half the CPUs)
    n_ctx: int = 4096

    @classmethod
    def for_mode(cls, quick: bool) -> "BenchSettings":
        return cls(max_tokens=96, repeats=5, grammar_tokens=64, grammar_repeats=3) if quick else cls()


@dataclass
class StreamSample:
    """One streamed generation seen from the client."""

    ttft_s: float
    decode_tps: float
    completion_tokens: int
    prompt_tokens: int = 0
    cached_tokens: int = 0
    text: str = ""
    calls: list[dict[str, Any]] = field(default_factory=list)


def median(values: list[float]) -> float:
    return statistics.median(values) if values else 0.0
