"""The thread governor: all cores while they are faster, one thread when a loaded machine
makes them slower (engine/threads.py). Driven with step times, as the engine feeds it."""

from __future__ import annotations

from localtools.engine.threads import ThreadGovernor, default_threads


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def run(gov: ThreadGovernor, clock: Clock, seconds_for: dict[int, float], steps: int, tokens: int = 1,
        held: bool = False) -> list[int]:
    """Feed `steps` decode steps whose time depends on the current thread count; `held`:
    one-token steps whose sums depend on the count, which the engine calls `hold` before
    (flash attention past 256 tokens, a temperature-0 request)."""
    seen = []
    for _ in range(steps):
        if held:
            gov.hold()
        took = seconds_for[gov.current] * tokens
        clock.now += took
        gov.observe(tokens, took)
        seen.append(gov.current)
    return seen


def make(full: int = 2) -> tuple[ThreadGovernor, Clock, list[int]]:
    applied: list[int] = []
    clock = Clock()
    return ThreadGovernor(full, applied.append, clock=clock, wait=20.0, max_wait=320.0), clock, applied


def test_idle_machine_keeps_every_core_after_one_trial():
    gov, clock, applied = make()
    seen = run(gov, clock, {2: 0.011, 1: 0.018}, 40)
    assert seen[:3] == [2, 2, 2]
    assert seen[3:7] == [1, 1, 1, 1]  # the single-thread trial, after 4 steps
    assert seen[-20:] == [2] * 20
    assert applied == [1, 2]


def test_loaded_machine_drops_to_one_thread_and_stays():
    gov, clock, applied = make()
    seen = run(gov, clock, {2: 2.7, 1: 0.018}, 30)
    assert seen[-15:] == [1] * 15
    assert applied[0] == 1
    assert gov.batch == 1  # prompt chunks too


def test_a_trial_lost_by_a_little_keeps_every_core():
    """Four steps are noisy: the trials' 8.3 ms on 2 threads against 7.2 on 1 came with a
    15% faster stream on 2 threads end to end. Only a clear loss (25%) moves."""
    gov, clock, applied = make()
    seen = run(gov, clock, {2: 0.0083, 1: 0.0072}, 40)
    assert seen[-10:] == [2] * 10 and gov.batch == 2


def test_one_token_cheaper_on_one_thread_keeps_every_core_for_prompts():
    """An idle machine where one token is clearly cheaper on one thread (10 ms against 7)
    but prompts are twice as fast on all cores (2.3 ms a token against 4.2): single tokens
    go to one thread, prompt chunks and batches stay on all cores."""
    gov, clock, applied = make()
    gov.observe_prefill(128, 128 * 0.0023)  # a prompt on all cores
    seen = run(gov, clock, {2: 0.010, 1: 0.007}, 12)
    assert seen[-4:] == [1] * 4
    assert gov.batch == 2
    gov.observe_prefill(128, 128 * 0.0023)  # stays: not slower than one thread
    assert gov.batch == 2


def test_one_token_trial_lost_by_a_little_moves_prompts_too_when_they_were_slower():
    gov, clock, _ = make()
    gov.current = gov.batch = 1
    gov.observe_prefill(128, 128 * 0.004)  # a prompt chunk on one thread
    gov.current = gov.batch = 2
    gov.observe_prefill(128, 128 * 0.005)  # slower on all cores (not 10x: no drop at once)
    run(gov, clock, {2: 0.010, 1: 0.007}, 12)
    assert gov.current == gov.batch == 1


def test_a_trial_of_all_cores_on_a_loaded_machine_costs_two_steps_and_backs_off():
    gov, clock, applied = make()
    run(gov, clock, {2: 2.7, 1: 0.018}, 10)
    assert gov.current == 1
    full_steps = []
    for _ in range(20000):  # about 6 minutes of single-thread steps and the trials between
        before = gov.current
        took = 2.7 if before == 2 else 0.018
        clock.now += took
        gov.observe(1, took)
        if before == 2:
            full_steps.append(clock.now)
    # each trial on all cores is judged after its second slow step, and they get rarer
    assert len(full_steps) >= 4 and len(full_steps) % 2 == 0
    assert all(abs(b - a - 2.7) < 1e-6 for a, b in zip(full_steps[::2], full_steps[1::2], strict=True))
    gaps = [b - a for a, b in zip(full_steps[1::2], full_steps[2::2], strict=False)]
    assert all(g > 30 for g in gaps)
    assert gaps == sorted(gaps)


def test_one_very_slow_step_among_fast_ones_keeps_every_core():
    """Seen in `serve` beside a client on the same 2-core machine: a 93 ms step among
    5-7 ms ones (14x one thread's). Alone it is not load; two in a row are."""
    gov, clock, _ = make()
    run(gov, clock, {2: 0.0060, 1: 0.0066}, 12)  # past the first trial
    assert gov.current == 2
    clock.now += 0.093
    gov.observe(1, 0.093)
    assert gov.current == gov.batch == 2
    run(gov, clock, {2: 0.0060, 1: 0.0066}, 3)
    for _ in range(2):
        clock.now += 0.093
        gov.observe(1, 0.093)
    assert gov.current == gov.batch == 1


def test_load_going_away_brings_every_core_back():
    gov, clock, _ = make()
    run(gov, clock, {2: 2.7, 1: 0.018}, 10)
    assert gov.current == 1
    seen = run(gov, clock, {2: 0.011, 1: 0.018}, 8000)  # ~140 s, beyond the next trial
    assert seen[-10:] == [2] * 10


def test_one_thread_configured_never_switches():
    gov, clock, applied = make(full=1)
    run(gov, clock, {1: 0.018}, 50)
    assert applied == [] and gov.current == 1


def test_batch_sizes_are_timed_apart():
    gov, clock, _ = make()
    run(gov, clock, {2: 0.011, 1: 0.018}, 10, tokens=1)
    # a 4-token step on all cores is slower than a 1-token step on one thread, but not
    # slower than one thread doing 4 tokens: no drop
    seen = run(gov, clock, {2: 0.007, 1: 0.012}, 10, tokens=4)
    assert seen[:4] == [2, 2, 2, 2]


def test_default_threads_is_at_least_one_and_at_most_the_usable_cpus():
    import os

    n = default_threads()
    assert 1 <= n <= len(os.sched_getaffinity(0))


def test_a_slow_prompt_chunk_on_all_cores_drops_to_one_thread_once_one_thread_was_timed():
    gov, clock, _ = make()
    run(gov, clock, {2: 0.011, 1: 0.018}, 8)  # one trial: single-thread decode timed
    gov.batch = 1
    gov.observe_prefill(128, 128 * 0.006)  # a prompt chunk on one thread
    gov.batch = 2
    gov.observe_prefill(128, 128 * 0.003)  # all cores, faster: stays
    assert gov.current == gov.batch == 2
    gov.observe_prefill(128, 128 * 0.1)  # all cores, 16x slower than one thread
    assert gov.current == gov.batch == 1


def test_calibration_on_a_loaded_machine_starts_on_one_thread():
    gov, clock, applied = make()
    times = iter([0.05, 0.018, 0.019, 2.7, 2.6])  # graph warm-up, one thread twice, all cores twice
    gov.calibrate(lambda: next(times))
    assert gov.current == 1 and applied[-1] == 1


def test_calibration_on_an_idle_machine_keeps_every_core():
    gov, clock, applied = make()
    times = iter([0.05, 0.018, 0.018, 0.26, 0.011])  # one all-cores step 14x: a hiccup
    gov.calibrate(lambda: next(times))
    assert gov.current == 2
    # a prompt chunk on all cores slower per token than one thread decodes drops at once
    gov.observe_prefill(64, 64 * 0.2)
    assert gov.current == 1


def test_engine_calibrates_with_default_threads(model_path):
    from localtools.engine import Engine, EngineConfig, SamplingParams

    eng = Engine(EngineConfig(model_path=str(model_path), n_ctx=256))
    try:
        assert eng.threads.full == default_threads()
        assert eng.threads.current in (1, eng.threads.full)
        assert "".join(eng.generate("Hello", SamplingParams(max_tokens=3, temperature=0.0)))
    finally:
        eng.close()


def test_one_slow_step_on_an_idle_machine_does_not_drop_every_core():
    gov, clock, _ = make()
    run(gov, clock, {2: 0.011, 1: 0.018}, 12)  # past the first trial
    assert gov.current == 2
    clock.now += 0.07
    gov.observe(1, 0.07)  # a graph re-plan: 4x one thread's step
    assert gov.current == 2


def test_one_slow_step_before_a_trial_does_not_lose_it():
    """Seen in `serve`: all cores' median step 7.4 ms, one thread's 9.3 ms, but a 5x step
    just before the trial put a running mean of all cores at 10.6 ms, and the trial went to
    one thread. The median keeps every core."""
    gov, clock, _ = make()
    run(gov, clock, {2: 0.0074, 1: 0.0093}, 12)  # past the first trial
    assert gov.current == 2
    clock.now = gov._next_trial - 0.01  # type: ignore[operator]
    gov.observe(1, 0.037)  # a 5x step just before the next trial
    seen = run(gov, clock, {2: 0.0074, 1: 0.0093}, 12)
    assert 1 in seen  # the trial ran
    assert seen[-4:] == [2] * 4


def test_prompt_chunks_keep_their_threads_during_a_trial():
    """A trial of one thread times decode steps; a long prompt's chunks running between
    them stay on all cores (on one they took twice as long)."""
    clock = Clock()
    applied: list[tuple[int, int]] = []
    gov = ThreadGovernor(2, lambda _t: applied.append((gov.current, gov.batch)), clock=clock, wait=20.0)
    run(gov, clock, {2: 0.011, 1: 0.018}, 4)  # the trial starts after 4 steps
    assert (gov.current, gov.batch, gov.prompt) == (1, 1, 2)
    with gov.prompt_chunk():
        inside = (gov.current, gov.batch)
    assert inside == (1, 2) and applied[-2:] == [(1, 2), (1, 1)]
    run(gov, clock, {2: 0.011, 1: 0.018}, 4)  # the trial ends: all cores won
    assert (gov.current, gov.batch, gov.prompt) == (2, 2, 2)
    n = len(applied)
    with gov.prompt_chunk():
        pass
    assert len(applied) == n  # nothing to switch outside a trial


def test_a_batch_trial_lost_by_less_than_load_keeps_every_core():
    """Several sequences' steps: one thread 1.6x slower on the idle 2-core machine; a
    trial that puts it ahead by less than 2x is noise, and batches stay on all cores."""
    gov, clock, _ = make()
    seen = run(gov, clock, {2: 0.019, 1: 0.014}, 12, tokens=4)  # one thread "wins" by 1.36x
    assert seen[3:7] == [1, 1, 1, 1]  # the trial ran
    assert gov.current == gov.batch == 2
    gov2, clock2, _ = make()
    run(gov2, clock2, {2: 0.060, 1: 0.014}, 12, tokens=4)  # 4x: load
    assert gov2.current == gov2.batch == 1


def test_held_steps_run_on_the_settled_count_and_start_no_trial():
    gov, clock, applied = make()
    assert run(gov, clock, {2: 0.011, 1: 0.018}, 40, held=True) == [2] * 40
    assert applied == []
    # the trial comes with the first step that is not held
    assert run(gov, clock, {2: 0.011, 1: 0.018}, 2) == [1, 1]


def test_a_held_step_ends_a_running_trial_unjudged():
    gov, clock, applied = make()
    run(gov, clock, {2: 0.011, 1: 0.005}, 5)  # 4 steps, then a trial of one thread starts
    assert gov.current == 1
    seen = run(gov, clock, {2: 0.011, 1: 0.005}, 10, held=True)
    assert seen == [2] * 10  # one thread was faster, but the trial was not finished
    assert applied == [1, 2]
    clock.now += 25.0  # past the next trial's time: it waits for a step not held
    assert run(gov, clock, {2: 0.011, 1: 0.005}, 3, held=True) == [2, 2, 2]


def test_a_loaded_machine_still_drops_during_held_steps():
    gov, clock, _ = make()
    run(gov, clock, {2: 0.011, 1: 0.018}, 20)  # one thread timed by a trial
    assert run(gov, clock, {2: 2.7, 1: 0.018}, 6, held=True)[-3:] == [1, 1, 1]
