"""The micro-batcher's window: a burst that starts after an idle spell is gathered whole.

The batcher is the logic under test here, so its work is a plain function (each item's result is the batch
it ran in); the engines' own tests run it with real models.
"""

from __future__ import annotations

import threading
import time

from tools.backends.batcher import IDLE_S, MicroBatcher, expect_burst


def sized(items: list) -> list:
    time.sleep(0.02)  # a model call takes time: callers arriving meanwhile queue up
    return [len(items)] * len(items)


def test_a_burst_after_an_idle_spell_is_not_split_by_its_first_request():
    """After one-at-a-time calls (where a lone request is served at once), the model idles; then eight callers
    start one after the other, 5 ms apart (each loads its sample first). Taking the first one alone would split
    them into 1 + 7, and the two groups would then stay apart for the rest of the run."""
    batcher = MicroBatcher(sized, max_batch=16, wait_s=0.01, max_wait_s=0.1)
    for _ in range(3):
        assert batcher.submit([0]) == [1]
    time.sleep(IDLE_S + 0.1)
    results: list = [None] * 8

    def call(i: int) -> None:
        results[i] = batcher.submit([i])[0]

    threads = []
    for i in range(8):
        threads.append(threading.Thread(target=call, args=(i,)))
        threads[-1].start()
        time.sleep(0.005)
    for thread in threads:
        thread.join()
    assert batcher.batch_sizes[3:] == [8] and results == [8] * 8


def test_one_at_a_time_callers_are_still_served_alone():
    batcher = MicroBatcher(sized, max_batch=16, wait_s=0.01, max_wait_s=0.1)
    for _ in range(6):
        assert batcher.submit([0]) == [1]
    assert batcher.batch_sizes == [1] * 6


def test_a_batch_as_large_as_the_recent_ones_closes_without_waiting_out_the_gap():
    """Rounds of four callers arriving together: once a batch of four ran, the next round's batch closes as soon
    as its fourth request is in, instead of waiting for a gap in which no one else comes."""
    batcher = MicroBatcher(sized, max_batch=16, wait_s=0.5, max_wait_s=1.0)

    def round_of_four() -> float:
        started = time.monotonic()
        threads = [threading.Thread(target=batcher.submit, args=([i],)) for i in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        return time.monotonic() - started

    first = round_of_four()  # no history: the batch waits out the 0.5 s gap
    second = round_of_four()
    assert batcher.batch_sizes == [4, 4]
    assert first >= 0.5 and second < 0.3


def test_the_batch_history_is_bounded(monkeypatch):
    from tools.backends import batcher as module

    monkeypatch.setattr(module, "HISTORY", 5)
    batcher = MicroBatcher(lambda items: items, max_batch=4, wait_s=0.001, max_wait_s=0.002)
    for i in range(40):
        batcher.submit([i])
    assert len(batcher.batch_sizes) <= 10 and len(batcher.run_seconds) == len(batcher.batch_sizes)


def test_an_announced_burst_closes_its_first_batch_once_all_are_in():
    """An eval says how many samples start together: the first batch after idling closes as soon as it holds
    that many, not after a quiet gap (here 1 s); the announcement is met once, the next idle batch waits again."""
    batcher = MicroBatcher(sized, max_batch=16, wait_s=0.01, max_wait_s=2.0)

    def burst(n: int) -> float:
        started = time.monotonic()
        threads = [threading.Thread(target=batcher.submit, args=([i],)) for i in range(n)]
        for thread in threads:
            thread.start()
            time.sleep(0.005)
        for thread in threads:
            thread.join()
        return time.monotonic() - started

    expect_burst(4)
    announced = burst(4)
    time.sleep(IDLE_S + 0.1)
    unannounced = burst(4)
    assert batcher.batch_sizes == [4, 4]
    assert announced < 0.5 and unannounced >= 1.0


def test_a_model_idle_while_another_was_busy_closes_its_batch_once_its_cohort_is_back():
    """The extract regime's perceiver: its callers spend longer than the idle spell in the reasoner between two of
    its batches. They come back together, as the cohort its last batches held: the batch closes once they are in,
    or (one fewer: a sample ended) after the model's own short gap, not after the quiet gap that new callers
    get (here 1 s); when no model of the process was busy, it waits for that gap as before."""
    perceiver = MicroBatcher(sized, max_batch=16, wait_s=0.01, max_wait_s=2.0)
    reasoner = MicroBatcher(lambda items: time.sleep(IDLE_S + 0.15) or [len(items)] * len(items),
                            max_batch=16, wait_s=0.01, max_wait_s=0.01)  # fmt: skip

    def sample() -> None:
        reasoner.submit([0])
        perceiver.submit([0])

    def round_of(n: int, target=sample) -> float:
        started = time.monotonic()
        threads = [threading.Thread(target=target) for _ in range(n)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        return time.monotonic() - started

    round_of(4)  # history: the perceiver's batches hold four
    assert round_of(4) < 0.9 and round_of(3) < 0.9
    assert perceiver.batch_sizes == [4, 4, 3]
    time.sleep(IDLE_S + 0.1)
    assert round_of(4, target=lambda: perceiver.submit([0])) >= 1.0, "all idle: the quiet gap"
    assert perceiver.batch_sizes[-1] == 4
