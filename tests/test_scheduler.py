"""The scheduler on the real engine: FIFO serialisation across threads, queue limit,
cancellation (queued and running), errors reaching the consumer, asyncio iteration."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

from localtools.engine import ContextLengthExceeded, Engine, EngineConfig, GrammarError, SamplingParams
from localtools.gbnf import Grammar
from localtools.scheduler import QueueFull, Scheduler

pytestmark = pytest.mark.e2e

PROMPT = "<|im_start|>user\nTell me a story about a cat.<|im_end|>\n<|im_start|>assistant\n"


def forced(word: str, max_tokens: int = 12) -> SamplingParams:
    """Params whose only possible output is `word` (distinct per request)."""
    return SamplingParams(max_tokens=max_tokens, temperature=0.9, grammar=Grammar(f'root ::= "{word}"'))


def long_run() -> SamplingParams:
    # cannot end its turn before max_tokens: the grammar needs 2000 characters
    return SamplingParams(max_tokens=400, temperature=0.8, grammar=Grammar("root ::= [a-z ]{2000}"))


@pytest.fixture(scope="module")
def engine(model_path):
    eng = Engine(EngineConfig(model_path=str(model_path), n_ctx=1024))
    yield eng
    eng.close()


@pytest.fixture
def scheduler(engine):
    sched = Scheduler(engine, max_queue=8)
    yield sched
    sched.close()


def wait_until(predicate, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.01)


def test_concurrent_submissions_are_served_correctly(scheduler, engine):
    words = [f"answer-{i}-{'x' * i}" for i in range(4)]
    prompts = [PROMPT.replace("a cat", f"cat number {i}") for i in range(4)]
    results: dict[int, tuple[str, int]] = {}
    order: list[int] = []
    lock = threading.Lock()

    def client(i: int) -> None:
        handle = scheduler.submit(prompts[i], forced(words[i]))
        pieces = []
        for piece in handle:
            if not pieces:
                with lock:
                    order.append(i)
            pieces.append(piece)
        results[i] = ("".join(pieces), handle.stats.prompt_tokens)

    threads = [threading.Thread(target=client, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert sorted(results) == [0, 1, 2, 3]
    for i, (text, prompt_tokens) in results.items():
        assert text == words[i]
        assert prompt_tokens == engine.count_tokens(prompts[i])
    assert scheduler.queue_depth() == 0


def test_requests_run_in_submission_order(scheduler):
    handles = [scheduler.submit(PROMPT, forced(f"n{i}", 6)) for i in range(5)]
    for i, h in enumerate(handles):
        assert h.text() == f"n{i}"
    starts = [h.started_at for h in handles]
    assert starts == sorted(starts)


def test_queue_limit_raises_queue_full(engine):
    sched = Scheduler(engine, max_queue=1)
    try:
        running = sched.submit(PROMPT, long_run())
        wait_until(lambda: sched.busy)
        waiting = sched.submit(PROMPT, forced("later"))
        assert sched.queue_depth() == 1
        with pytest.raises(QueueFull) as info:
            sched.submit(PROMPT, forced("refused"))
        assert info.value.retry_after > 0
        running.cancel()
        assert waiting.text() == "later"  # the queued one was not lost
        assert running.stats.finish_reason == "cancelled"
    finally:
        sched.close()


def test_cancel_running_and_queued(scheduler):
    running = scheduler.submit(PROMPT, long_run())
    queued = scheduler.submit(PROMPT, forced("never"))
    it = iter(running)
    next(it)
    queued.cancel()
    assert queued.text() == ""  # ends at once, never ran
    assert queued.stats.finish_reason == "cancelled" and queued.started_at is None
    started = time.monotonic()
    running.cancel()
    rest = list(it)
    assert len(rest) <= 2
    assert time.monotonic() - started < 5
    assert running.stats.finish_reason == "cancelled"
    # the worker goes on serving
    assert scheduler.submit(PROMPT, forced("after")).text() == "after"


def test_abandoned_iteration_cancels(scheduler):
    handle = scheduler.submit(PROMPT, long_run())
    for _ in handle:
        break
    assert handle.wait(10)
    assert handle.stats.finish_reason == "cancelled"


def test_engine_errors_reach_the_consumer(scheduler):
    too_long = scheduler.submit("word " * 3000, SamplingParams(max_tokens=4))
    with pytest.raises(ContextLengthExceeded):
        too_long.text()
    assert isinstance(too_long.error, ContextLengthExceeded)
    bad = scheduler.submit(PROMPT, SamplingParams(grammar=Grammar("root ::= undefined-rule")))
    with pytest.raises(GrammarError):
        for _ in bad:
            pass
    assert scheduler.submit(PROMPT, forced("alive")).text() == "alive"


def test_async_iteration(scheduler):
    async def collect(handle) -> str:
        return "".join([piece async for piece in handle])

    async def main() -> list[str]:
        handles = [scheduler.submit(PROMPT, forced(w)) for w in ("alpha", "beta", "gamma")]
        return await asyncio.gather(*(collect(h) for h in handles))

    assert asyncio.run(main()) == ["alpha", "beta", "gamma"]


def test_async_error_and_cancel(scheduler):
    async def main() -> tuple[str, str]:
        bad = scheduler.submit("word " * 3000, SamplingParams(max_tokens=4))
        with pytest.raises(ContextLengthExceeded):
            async for _ in bad:
                pass
        running = scheduler.submit(PROMPT, long_run())
        async for _ in running:
            break  # leaving early cancels
        await asyncio.get_running_loop().run_in_executor(None, running.wait, 10)
        return running.stats.finish_reason, "".join([p async for p in scheduler.submit(PROMPT, forced("ok"))])

    assert asyncio.run(main()) == ("cancelled", "ok")


def test_call_runs_on_the_worker_even_during_a_generation(scheduler, engine):
    assert scheduler.call(lambda e: e.count_tokens("hello world")) == engine.count_tokens("hello world")
    running = scheduler.submit(PROMPT, long_run())
    it = iter(running)
    next(it)
    worker_thread = scheduler.call(lambda e: threading.current_thread().name)
    assert worker_thread == "localtools-engine"
    assert not running.done  # served between tokens, not after the generation
    with pytest.raises(ZeroDivisionError):
        scheduler.call(lambda e: 1 / 0)
    running.cancel()
    list(it)


def test_close_cancels_everything(engine):
    sched = Scheduler(engine, max_queue=4)
    running = sched.submit(PROMPT, long_run())
    queued = sched.submit(PROMPT, forced("never"))
    wait_until(lambda: sched.busy)
    sched.close()
    assert running.wait(5) and queued.wait(1)
    assert queued.stats.finish_reason == "cancelled" and queued.text() == ""
    assert running.stats.finish_reason == "cancelled"
    with pytest.raises(RuntimeError):
        sched.submit(PROMPT, forced("x"))


# ---- several slots ---------------------------------------------------------------


@pytest.fixture(scope="module")
def engine2(model_path):
    eng = Engine(EngineConfig(model_path=str(model_path), n_ctx=1024, n_parallel=2))
    yield eng
    eng.close()


def test_slots_run_side_by_side_and_the_rest_wait_fifo(engine2):
    sched = Scheduler(engine2, max_queue=8)
    try:
        long = [sched.submit(PROMPT, long_run()) for _ in range(2)]
        wait_until(lambda: sched.slots_busy == 2)
        queued = [sched.submit(PROMPT, forced(f"q{i}", 6)) for i in range(4)]
        assert sched.queue_depth() == 4 and sched.stats()["slots_busy"] == 2
        time.sleep(0.3)
        assert all(h.started_at is None for h in queued)  # no slot free yet
        long[0].cancel()  # frees a slot: the queue moves one at a time, in order
        for i, h in enumerate(queued):
            assert h.text() == f"q{i}"
        starts = [h.started_at for h in queued]
        assert starts == sorted(starts)
        assert not long[1].done  # still running beside them
        long[1].cancel()
        assert long[1].wait(10) and long[1].stats.finish_reason == "cancelled"
        wait_until(lambda: sched.slots_busy == 0)
        stats = sched.stats()
        assert stats["queue_depth"] == 0 and stats["tokens_generated_total"] > 0
    finally:
        sched.close()


def test_context_limit_is_per_slot(engine2):
    sched = Scheduler(engine2, max_queue=8)
    try:
        too_long = "<|im_start|>user\n" + "cat " * 1100 + "<|im_end|>\n"
        with pytest.raises(ContextLengthExceeded) as info:
            sched.submit(too_long, forced("x")).text()
        assert info.value.n_ctx == 1024
        assert sched.submit(PROMPT, forced("fine")).text() == "fine"
    finally:
        sched.close()
