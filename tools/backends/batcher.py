"""Micro-batching: requests from many threads become batches run by one worker thread per model.

Why one worker: `generate` is not thread-safe and a model's forward pass is the unit of work a GPU
batches well. Callers (the eval graph's threads, several assistants) block on their own requests while
the worker drains the queue: whatever arrived while the model was busy, plus whatever keeps arriving
with short gaps (for a bounded window, below), up to `max_batch`, goes into one call.
Callers released by one batch come back in a burst (each does a little work between two model calls);
waiting for the burst to end fills the next batch instead of splitting it, and a burst split in two stays
split: every later round then runs two batches, paying the per-batch cost twice. The window is measured
against the model's own pace: when recent batches took up to T seconds, a gap of T/10 and a window of T are
worth waiting for (never less than `wait_s` and `max_wait_s`, never more than 4 x `max_wait_s`): on a slow or
busy machine callers come back more slowly too, with fixed 10 ms gaps a burst split there. (Waiting out the
window whenever a batch is smaller than recent ones merged split bursts under load, but cost a quiet 2-core
machine a quarter of its concurrent throughput: measured, not kept.)

Three cases skip or change that wait:
- a batch that holds as many requests as the largest recent one closes at once: the whole burst is there,
  and waiting out the gap for no one cost an eval at concurrency 16 two gaps a round, about 8% of its time;
- a lone caller (the last few batches held one request each and nothing else is queued) is served at once;
- after IDLE_S without a batch, a request may be the first of a burst (an eval going from one sample at a
  time to sixteen, clients arriving together), and taking it alone would split that burst for good. Its batch
  closes once no request came for half of `max_wait_s`, or `max_wait_s` after it opened: a burst's callers
  start one after the other (each loads its sample first), and a 10 ms gap between two of them split the
  burst in measured runs. A lone caller pays that wait once per idle spell (50 ms by default), not per call.
  Where the size of the coming burst is known (an eval fanning out its first samples: `expect_burst`), each
  batcher's next batch opened after idling closes as soon as it holds that many: the wait above cost an eval
  at concurrency 16 on the tiny models 100 ms per run (both models' first batch), 5% of it. And a model that
  idled while another model of the process was busy, after batches of several requests, was waiting for
  callers that are over there: they come back together, so its batch is gathered as if it had not idled (the
  first case, else its own pace's gap). An eval's samples in the extract regime reach the perceiver every
  0.55 s, between two reasoner calls: the quiet gap cost 50 ms each time, 9% of the run.

One bad request must fail alone, and the others must run once: a model call may have streamed text to
its caller, so re-running a batch would send that text twice. `run` therefore returns, per item, its
result or a `RowError` holding the exception of that item alone (engines set up every row on its own
before the shared generate); only that caller gets the exception. If `run` itself raises, the error is
the batch's and every caller in it gets it: nothing is retried here.
"""

from __future__ import annotations

import math
import queue
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Generic, TypeVar

In = TypeVar("In")
Out = TypeVar("Out")
GAP_SHARE, WINDOW_SHARE, CEILING = 0.1, 1.0, 4.0  # of recent batches' time; of max_wait_s (see above)
RECENT = 4  # batches that tell the pace
HISTORY = 4096  # batch sizes and times kept for benchmarks and tests (trimmed at twice this)
IDLE_S = 0.25  # a request after this long without a batch may open a burst: it waits for company (see above)
BURST_TTL_S = 60.0  # an announced burst that no batcher met within this long is forgotten


class Activity:
    """Whether any batcher of the process ran a batch lately (see the module docstring)."""

    def __init__(self):
        self._lock = threading.Lock()
        self._running = 0
        self._last_end = float("-inf")

    def started(self) -> None:
        with self._lock:
            self._running += 1

    def ended(self) -> None:
        with self._lock:
            self._running -= 1
            self._last_end = time.monotonic()

    def busy_within(self, seconds: float) -> bool:
        return self._running > 0 or time.monotonic() - self._last_end <= seconds


_ACTIVITY = Activity()


@dataclass(frozen=True, eq=False)  # each announcement is its own: batchers tell them apart by identity
class Burst:
    size: int
    at: float  # time.monotonic() when announced


_burst: Burst | None = None  # the last announced burst (process-wide: the batchers are)


def expect_burst(size: int) -> None:
    """Say that `size` callers are starting together (an eval's first samples): the next batch each batcher opens
    after idling closes once it holds that many, instead of waiting for a quiet gap (see the module docstring)."""
    global _burst
    if size >= 1:
        _burst = Burst(size, time.monotonic())


class RowError:
    """One item's failure inside a batch that otherwise succeeded (see the module docstring)."""

    def __init__(self, error: BaseException):
        self.error = error


class MicroBatcher(Generic[In, Out]):
    def __init__(self, run: Callable[[list[In]], list[Out | RowError]], max_batch: int = 32, wait_s: float = 0.01,
                 name: str = "batcher", on_start: Callable[[], None] | None = None,
                 max_wait_s: float = 0.1):  # fmt: skip
        if max_batch < 1:
            raise ValueError("max_batch must be at least 1")
        self.run = run
        self.max_batch = max_batch
        self.wait_s = wait_s
        self.max_wait_s = max_wait_s
        self.name = name
        self.on_start = on_start  # runs once in the worker thread (per-thread settings such as CPU threads)
        self.batch_sizes: list[int] = []  # the batches run (the last HISTORY at least), for benchmarks and tests
        self.run_seconds: list[float] = []  # how long each took: the scale of the batching window
        self._queue: queue.Queue[tuple[In, Future]] = queue.Queue()
        self._worker: threading.Thread | None = None
        self._last_end = float("-inf")  # when the last batch ended
        self._burst_met: Burst | None = None  # the last announced burst this batcher met
        self._lock = threading.Lock()

    def submit(self, items: Sequence[In]) -> list[Out]:
        """Run `items` (possibly batched with other callers' items) and return their results in order."""
        if threading.current_thread() is self._worker:  # a nested call from inside a batch: run inline
            return [_unwrap(result) for result in self.run(list(items))]
        self._ensure_worker()
        futures = []
        for item in items:
            future: Future = Future()
            self._queue.put((item, future))
            futures.append(future)
        return [f.result() for f in futures]

    def _ensure_worker(self) -> None:
        with self._lock:
            if self._worker is None or not self._worker.is_alive():
                self._worker = threading.Thread(target=self._loop, name=self.name, daemon=True)
                self._worker.start()

    def _loop(self) -> None:
        if self.on_start is not None:
            self.on_start()
        while True:
            batch = [self._queue.get()]
            gap, cap, enough = self._closing()
            while len(batch) < self.max_batch:
                if len(batch) >= enough and self._queue.empty():
                    break  # everyone expected is here: the gap would be waited for no one
                left = min(gap, cap - time.monotonic())
                if left <= 0:
                    break
                try:
                    batch.append(self._queue.get(timeout=left))
                except queue.Empty:
                    break
            self._execute(batch)

    def _closing(self) -> tuple[float, float, float]:
        """(gap, deadline, enough) for a batch opening now: it closes once no request came for `gap`, at
        `deadline`, or once it holds `enough` requests with nothing else queued (see the module docstring)."""
        now = time.monotonic()
        cohort = max(self.batch_sizes[-RECENT:], default=0)
        if now - self._last_end > IDLE_S:
            announced = self._announced(now)
            if announced is not None or cohort < 2 or not _ACTIVITY.busy_within(IDLE_S):  # maybe new callers
                return self.max_wait_s / 2, now + self.max_wait_s, announced or math.inf
        # this model was busy lately, or its callers were busy with another model: they come back together
        alone = all(size == 1 for size in self.batch_sizes[-3:]) and self._queue.empty()
        gap, window = self.window()
        return gap, now + (0.0 if alone else window), cohort if cohort > 1 else math.inf

    def _announced(self, now: float) -> int | None:
        """The size of a burst announced (`expect_burst`) and not yet met by this batcher; met once only."""
        burst = _burst
        if burst is None or burst is self._burst_met or now - burst.at > BURST_TTL_S:
            return None
        self._burst_met = burst
        return burst.size

    def window(self) -> tuple[float, float]:
        """(gap, window) in seconds: a batch closes once no request came for `gap`, or `window` after it opened."""
        pace = max(self.run_seconds[-RECENT:], default=0.0)
        window = min(max(self.max_wait_s, WINDOW_SHARE * pace), CEILING * self.max_wait_s)
        return min(max(self.wait_s, GAP_SHARE * pace), window), window

    def _execute(self, batch: list[tuple[In, Future]]) -> None:
        self.batch_sizes.append(len(batch))
        started = time.monotonic()
        _ACTIVITY.started()
        try:
            results = self.run([item for item, _ in batch])
        except BaseException as exc:  # noqa: BLE001 - handed to the callers, never lost in this thread
            for _, future in batch:
                future.set_exception(exc)
            return
        finally:
            _ACTIVITY.ended()
            self._last_end = time.monotonic()
            self.run_seconds.append(self._last_end - started)
            if len(self.batch_sizes) > 2 * HISTORY:  # a server runs for days: keep the recent ones only
                del self.batch_sizes[:-HISTORY], self.run_seconds[:-HISTORY]
        for (_, future), result in zip(batch, results):
            if isinstance(result, RowError):
                future.set_exception(result.error)
            else:
                future.set_result(result)


def _unwrap(result):
    if isinstance(result, RowError):
        raise result.error
    return result
