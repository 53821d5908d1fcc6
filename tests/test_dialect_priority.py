"""Detection order is declared beside each dialect (`priority`), not in a list.

The frozen list below is the order the registry used before priorities
existed (the old `_MODULES` tuple). The old dialects must keep that relative
order — a new dialect may be slotted anywhere — and, on every corpus
template, the first matching dialect in today's order must be the one the
frozen order picks.
"""

from __future__ import annotations

import pytest

from localtools.dialects import all_dialects
from tests.conftest import corpus_templates

FROZEN_ORDER = (
    "gpt-oss gemma4 functiongemma functionary-v3 functionary-v2 kimi-k2 kimi-k3 deepseek-v3.2 "
    "gigachat-3.5 solar hy3 minimax minimax-m3 glm seed-oss qwen3-coder minicpm5 functionary-v3.1 "
    "mistral phi4-mini firefunction-v2 deepseek-r1 deepseek-v3 command-r7b command-r granite "
    "granite-20b-fc nemotron yandexgpt apertus lfm2 minicpm3 pythonic hunyuan apriel minimax-m1 "
    "gigachat gigachat-3.1 internlm xlam hyperclovax hermes llama3 qwen2.5-coder chatml-function generic"
).split()


def test_priorities_reproduce_the_old_order() -> None:
    names = [d.name for d in all_dialects()]
    assert [n for n in names if n in FROZEN_ORDER] == FROZEN_ORDER
    assert names[-2:] == ["chatml-function", "generic"]  # the fallbacks stay last


def test_priorities_are_declared_and_distinct() -> None:
    dialects = all_dialects()
    assert all("priority" in vars(d) for d in dialects), [d.name for d in dialects if "priority" not in vars(d)]
    priorities = [d.priority for d in dialects]
    assert len(set(priorities)) == len(priorities), "two dialects share a priority: their order is accidental"
    assert priorities == sorted(priorities, reverse=True)


@pytest.mark.parametrize("path", corpus_templates(), ids=lambda p: p.name)
def test_first_match_is_unchanged_on_the_corpus(path) -> None:
    source = path.read_text(encoding="utf-8")
    by_name = {d.name: d for d in all_dialects()}
    matching = {n for n, d in by_name.items() if d.detect(source) is not None}
    frozen_first = next(n for n in FROZEN_ORDER if n in matching)
    current_first = next(d.name for d in all_dialects() if d.name in matching)
    assert current_first == frozen_first
