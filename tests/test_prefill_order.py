"""Which waiting prompt a batch step evaluates next (engine/batch.py `next_prompt`)."""

from __future__ import annotations

from types import SimpleNamespace

from localtools.engine.batch import WAIT_CREDIT, next_prompt


def waiting(n_tokens: int, done: int = 0, t0: float = 0.0) -> SimpleNamespace:
    return SimpleNamespace(tokens=[0] * n_tokens, prefill_at=done, t0=t0)


def test_fewest_tokens_left_goes_first():
    long, short = waiting(400), waiting(40)
    assert next_prompt([long, short], now=0.0) is short


def test_counts_what_is_left_not_the_prompt_length():
    nearly_done, fresh = waiting(1000, done=980), waiting(100)
    assert next_prompt([fresh, nearly_done], now=0.0) is nearly_done


def test_a_long_prompt_that_waited_is_not_starved_by_new_short_ones():
    old_long = waiting(600, t0=0.0)
    for second in range(1, 10):
        new_short = waiting(40, t0=float(second))
        if next_prompt([old_long, new_short], now=float(second)) is old_long:
            break
    else:
        raise AssertionError("the long prompt never got its turn")
    assert second <= (600 - 40) / WAIT_CREDIT + 1
