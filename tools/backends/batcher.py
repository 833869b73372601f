"""Micro-batching: requests from many threads become batches run by one worker thread per model.

Why one worker: `generate` is not thread-safe and a model's forward pass is the unit of work a GPU
batches well. Callers (the eval graph's threads, several assistants) block on their own requests while
the worker drains the queue: whatever arrived while the model was busy, plus whatever arrives within
`wait_s` of the first request, up to `max_batch`, goes into one call. A single caller gets its answer
with no added delay beyond `wait_s`.

A batch that raises is retried one request at a time, so one bad request (an image the processor
rejects) fails alone and the others still get their results.
"""

from __future__ import annotations

import queue
import threading
import time
from concurrent.futures import Future
from typing import Callable, Generic, Sequence, TypeVar

In = TypeVar("In")
Out = TypeVar("Out")


class MicroBatcher(Generic[In, Out]):
    def __init__(self, run: Callable[[list[In]], list[Out]], max_batch: int = 32, wait_s: float = 0.005,
                 name: str = "batcher"):  # fmt: skip
        if max_batch < 1:
            raise ValueError("max_batch must be at least 1")
        self.run = run
        self.max_batch = max_batch
        self.wait_s = wait_s
        self.name = name
        self.batch_sizes: list[int] = []  # every batch run, for benchmarks and tests
        self._queue: queue.Queue[tuple[In, Future]] = queue.Queue()
        self._worker: threading.Thread | None = None
        self._lock = threading.Lock()

    def submit(self, items: Sequence[In]) -> list[Out]:
        """Run `items` (possibly batched with other callers' items) and return their results in order."""
        if threading.current_thread() is self._worker:  # a nested call from inside a batch: run inline
            return self.run(list(items))
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
        while True:
            batch = [self._queue.get()]
            deadline = time.monotonic() + self.wait_s
            while len(batch) < self.max_batch:
                try:
                    batch.append(self._queue.get_nowait())
                    continue
                except queue.Empty:
                    pass
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                try:
                    batch.append(self._queue.get(timeout=left))
                except queue.Empty:
                    break
            self._execute(batch)

    def _execute(self, batch: list[tuple[In, Future]]) -> None:
        self.batch_sizes.append(len(batch))
        try:
            results = self.run([item for item, _ in batch])
        except BaseException as exc:  # noqa: BLE001 - handed to the callers, never lost in this thread
            if len(batch) == 1:
                batch[0][1].set_exception(exc)
                return
            for pair in batch:  # isolate the failing request(s)
                self._execute([pair])
            return
        for (_, future), result in zip(batch, results):
            future.set_result(result)
