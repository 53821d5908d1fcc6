"""How many CPU threads llama.cpp gets by default: one per physical core we may run on.

Measured on a 2-core virtual machine without hyper-threading (SmolLM2-135M, one streamed
request through `localtools serve`): 2 threads decode at ~84 tok/s, 1 thread at ~50, and
llama-server's own default (also one per physical core) at ~90. Half the *logical* CPUs,
the old rule, is the same number on a machine with hyper-threading and half the speed on
one without. A second hyper-thread of a core adds little to matrix work and its spin-waits
slow the first one, so siblings count once.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import time
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path


def default_threads() -> int:
    """Physical cores among the CPUs this process may use (at least 1); where the
    topology is unknown, half the logical CPUs (the usual hyper-threaded laptop)."""
    usable = _usable_cpus()
    cores = _linux_physical_cores(usable) or _macos_physical_cores()
    if cores:
        return max(1, min(cores, len(usable)))
    return max(1, len(usable) // 2)


def _usable_cpus() -> list[int]:
    try:
        return sorted(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # macOS, Windows
        return list(range(os.cpu_count() or 1))


def _linux_physical_cores(cpus: list[int]) -> int:
    """Distinct (package, core) pairs among `cpus`, from sysfs; 0 when unknown."""
    seen: set[tuple[str, str]] = set()
    for cpu in cpus:
        topo = Path(f"/sys/devices/system/cpu/cpu{cpu}/topology")
        try:
            seen.add(((topo / "physical_package_id").read_text().strip(), (topo / "core_id").read_text().strip()))
        except OSError:
            return 0
    return len(seen)


def _macos_physical_cores() -> int:
    if sys.platform != "darwin":
        return 0
    try:
        out = subprocess.run(["sysctl", "-n", "hw.physicalcpu"], capture_output=True, text=True, timeout=2)
        return int(out.stdout.strip() or 0)
    except (OSError, ValueError, subprocess.SubprocessError):
        return 0


PREFILL = -1  # the batch-size key of prompt chunks (their time is kept per token)


class ThreadGovernor:
    """Chooses, while decoding, between every core and a single thread.

    Two counts, as llama.cpp has two: `current` for one-token steps (one request
    decoding) and `batch` for steps of several tokens (prompt chunks, several requests
    decoding together). On a loaded machine both drop to one thread. On an idle one a
    small model's one-token steps can time faster on one thread (the trials put
    SmolLM2-135M at 7.2 ms on 1 thread, 8.3 ms on 2) while its prompt chunks still run
    twice as fast on every core (2.3 ms/token against 4.2); so a single-token trial lost
    by less than `IDLE_MARGIN` moves only `current`, and one lost by less than
    `KEEP_ALL` moves nothing.

    ggml's threads meet at a barrier after every operation of the graph (hundreds per
    token). When other processes keep the CPUs busy, a descheduled thread stalls all the
    others until its next time slice: measured on a 2-core machine running two other
    busy processes, 2 threads took 2.7 s per token and 1 thread 18 ms. llama-server has
    the same cliff. So the engine times its decode steps per thread setting and batch
    size, tries the other setting now and then (a few steps), and keeps all cores unless
    one thread was clearly faster;
    a step on all cores that is slower than one thread is judged at once. After a lost
    trial the next one waits twice as long (up to `max_wait`), so a loaded machine pays
    one slow step every few minutes.

    Step times are compared by their median over the last `WINDOW` steps, not a running
    mean: single steps of 3-5x happen on an idle machine (a graph re-plan, the server's
    own threads waking), and one such step in a mean put all cores 10-40% behind one
    thread in a trial they would have won (in `serve`, 2 threads' median step was 7.4 ms
    against one thread's 9.3, while the mean said 10.6 against 9.8).
    """

    WINDOW = 16

    TRIAL_STEPS = 4
    # SLOW_STEPS steps in a row this many times the single-thread time drop to one thread
    # at once: a loaded machine measured 150x; single steps of 3-5x happen on an idle one
    # (a new batch shape re-plans the graph, the server's own threads wake), and once 14x:
    # in `serve` with a client on the same 2-core machine, a 93 ms step among 5-7 ms ones,
    # which (judged alone) dropped the server to one thread, and each later trial's first
    # steps again, so it stayed there for good (2565 of 2574 steps of a bench run)
    SLOWER = 10.0
    SLOW_STEPS = 2
    # all cores losing a one-token trial by at most this much is an idle machine's small
    # model, not load (load measured 150x): batch work keeps every core
    IDLE_MARGIN = 2.0
    # a trial keeps every core unless one thread was clearly faster. Its four steps are
    # noisy: on an idle 2-core machine they put one thread 5-15% ahead, while 300 tokens
    # streamed at 143-162 tok/s on 2 threads and 125-135 on 1 (SmolLM2-135M, in-process)
    KEEP_ALL = 1.25

    def __init__(
        self,
        full: int,
        apply: Callable[[int], None],
        clock: Callable[[], float] = time.monotonic,
        wait: float = 20.0,
        max_wait: float = 320.0,
    ):
        self.full = full
        self.current = full  # threads for one-token steps
        self.batch = full  # threads for several tokens in one step (prompt chunks, batches)
        self._apply = apply
        self._clock = clock
        self._base_wait = self._wait = wait
        self._max_wait = max_wait
        # (threads, tokens in step) -> the latest step times (per token for PREFILL)
        self._times: dict[tuple[int, int], deque[float]] = {}
        self._medians: dict[tuple[int, int], float] = {}  # _typical's answers until the next record
        self._trial = 0  # steps left in the running trial
        self._settled_batch = full  # `batch` before the running trial (prompt chunks keep it)
        self._settled_current = full  # `current` before the running trial (held steps return to it)
        self._held = False  # the step now running must not be followed by a trial (hold)
        self._slow_run = 0  # steps in a row on all cores SLOWER than one thread
        self._steps = 0
        self._next_trial: float | None = None

    @property
    def active(self) -> bool:
        return self.full > 1

    @property
    def prompt(self) -> int:
        """Threads for prompt chunks: `batch`, except during a trial, whose few decode
        steps must not move a long prompt's chunks that run between them (measured: a
        trial of one thread put 128-token chunks at 0.53-0.59 s instead of 0.27-0.30)."""
        return self._settled_batch if self._trial > 0 else self.batch

    @contextmanager
    def prompt_chunk(self) -> Iterator[None]:
        """Run a prompt chunk on `prompt` threads (then back to the trial's count)."""
        if self.prompt == self.batch:
            yield
            return
        trial, self.batch = self.batch, self.prompt
        self._apply(self.current)
        try:
            yield
        finally:
            self.batch = trial
            self._apply(self.current)

    def hold(self) -> None:
        """Keep the settled thread count for the next step and start no trial after it:
        the step's sums depend on the count (flash attention's one token against 512+ KV
        cells, on the CPU) and its request asked for reproducible output. A running trial
        ends unjudged. Only a loaded machine's drop (SLOWER) still moves the count: two
        identical temperature-0 requests on an idle machine then get the same reply, where
        a trial of one thread had turned llama3.1's 332-token `required` call from
        get_weather into get_time."""
        if not self.active:
            return
        self._held = True
        if self._trial > 0:
            self._set(self._settled_current, self._clock() + self._wait, batch=self._settled_batch)

    def observe(self, tokens: int, seconds: float) -> None:
        """Record one decode step of `tokens` tokens; maybe change the thread count."""
        if not self.active:
            return
        threads = self.current if tokens == 1 else self.batch
        self._record((threads, tokens), seconds)
        self._steps += 1
        now = self._clock()
        slow = threads == self.full and self._clearly_slower(tokens, seconds)
        self._slow_run = self._slow_run + 1 if slow else 0
        held, self._held = self._held, False
        if self._slow_run >= self.SLOW_STEPS:
            self._drop()
        elif held:
            pass  # a trial waits for a step whose sums do not depend on the count
        elif self._trial > 0:
            self._trial -= 1
            if self._trial == 0:
                self._decide(tokens, now)
        elif self._next_trial is None:
            if self._steps >= self.TRIAL_STEPS:
                self._start_trial(now)
        elif now >= self._next_trial:
            self._start_trial(now)

    def calibrate(self, time_one_token: Callable[[], float]) -> None:
        """Time one decoded token on one thread and on all cores before serving, so the
        first prompt on a loaded machine is not evaluated on stalled threads."""
        if not self.active:
            return
        self._set(1, None, batch=1)
        time_one_token()  # the first decode allocates the graph: not timed
        # the faster of two: one step alone can be 10x on an idle machine (threads.SLOWER)
        single = min(time_one_token(), time_one_token())
        self._record((1, 1), single)
        self._set(self.full, None, batch=self.full)
        full = min(time_one_token(), time_one_token())
        self._record((self.full, 1), full)
        if full > self.SLOWER * single:
            self._drop()

    def observe_prefill(self, tokens: int, seconds: float) -> None:
        """Record one prompt chunk: on all cores, slower per token than one thread was
        drops to one thread at once (trials are run on decode steps only)."""
        if not self.active or tokens <= 0:
            return
        per_token = seconds / tokens
        self._record((self.prompt, PREFILL), per_token)
        # one thread's prompt time per token, or its decode time (never less) until known
        single = self._typical((1, PREFILL))
        single = self._typical((1, 1)) if single is None else single
        if self.prompt == self.full and single is not None and per_token > self.SLOWER * single:
            self._drop()

    def _record(self, key: tuple[int, int], seconds: float) -> None:
        self._times.setdefault(key, deque(maxlen=self.WINDOW)).append(seconds)
        self._medians.pop(key, None)

    def _typical(self, key: tuple[int, int]) -> float | None:
        """The median of the latest step times under `key`; None before the first. Kept
        until `key` records again: every all-cores step asks for one thread's median."""
        if key in self._medians:
            return self._medians[key]
        times = self._times.get(key)
        if not times:
            return None
        self._medians[key] = median = statistics.median(times)
        return median

    def _drop(self) -> None:
        """All cores lost: one thread, and the next trial of all cores waits twice as long."""
        self._slow_run = 0
        self._wait = min(self._wait * 2, self._max_wait)
        self._set(1, self._clock() + self._wait, batch=1)

    def _clearly_slower(self, tokens: int, seconds: float) -> bool:
        singles = [t for (threads, t) in self._times if threads == 1 and t >= tokens and t != PREFILL]
        if not singles:
            return False
        return seconds > self.SLOWER * self._typical((1, min(singles)))  # type: ignore[operator]

    def _start_trial(self, now: float) -> None:
        other = 1 if self.current == self.full else self.full
        for key in [k for k in self._times if k[0] == other and k[1] != PREFILL]:
            del self._times[key]  # judge the trial by what it measures now
            self._medians.pop(key, None)
        self._settled_batch, self._settled_current = self.batch, self.current
        self._trial = self.TRIAL_STEPS
        self._set(other, None, batch=other)  # a trial times both kinds of decode step on `other`

    def _decide(self, tokens: int, now: float) -> None:
        full, single = self._typical((self.full, tokens)), self._typical((1, tokens))
        if full is None or single is None or full <= self.KEEP_ALL * single:
            choice = batch = self.full  # all cores held their own
        elif full > self.IDLE_MARGIN * single:
            choice = batch = 1  # load
        elif tokens == 1:
            # not load: one token is just cheaper on one thread; prompt chunks and batches
            # stay on all cores unless prompt chunks too were measured slower there
            choice, batch = 1, self.full
            full_prompt, single_prompt = self._typical((self.full, PREFILL)), self._typical((1, PREFILL))
            if full_prompt is not None and single_prompt is not None and full_prompt >= single_prompt:
                batch = 1
        else:
            # several sequences' step lost by less than load: noise (on the idle 2-core
            # machine one thread took 31-33 ms for four sequences' step, all cores 19),
            # not a reason to put every batch on one thread for the next `wait` seconds
            choice = batch = self.full
        self._wait = self._base_wait if batch == self.full else min(self._wait * 2, self._max_wait)
        self._set(choice, now + self._wait, batch=batch)

    def _set(self, threads: int, next_trial: float | None, batch: int | None = None) -> None:
        self._trial = 0 if next_trial is not None else self._trial
        self._next_trial = next_trial
        batch = self.batch if batch is None else batch
        if threads != self.current or batch != self.batch:
            self.current, self.batch = threads, batch
            self._apply(threads)
