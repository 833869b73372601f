"""How much a public endpoint gives one client: the limits, and the run slots with their waiting queue.

Admission: `max_concurrent` runs at once; a request that finds them all busy waits in a FIFO queue of at most
`max_queue` requests for up to `queue_timeout_s`, then gets 429 with Retry-After (at once when the queue is
full), so a burst a little over capacity is served rather than refused. A run holds its slot until it ends;
a client that hangs up (streaming or not) or a run past `timeout_s` cancels it (graphs/server/background_run.py)
and the slot frees within a second or two.
"""

from __future__ import annotations

import asyncio
from collections import deque

from graphs.server.errors import ApiError
from graphs.server.serve_limits import ServeLimits


class Admission:
    """Run slots, and a bounded FIFO queue of requests waiting for one (see the module docstring).

    Lives on the event loop; a run's worker thread gives its slot back with `release_soon`."""

    def __init__(self, limits: ServeLimits):
        self.free = limits.max_concurrent
        self.limits = limits
        self.waiting: deque[asyncio.Future] = deque()
        self.loop: asyncio.AbstractEventLoop | None = None

    async def enter(self, gone: asyncio.Event) -> None:
        """Take a slot, waiting in the queue if need be; 429 when the queue is full or the wait too long."""
        self.loop = asyncio.get_running_loop()
        if self.free > 0 and not self.waiting:
            self.free -= 1
            return
        if len(self.waiting) >= self.limits.max_queue:
            raise self._busy("every run slot is busy and the queue is full")
        if not await self._wait_in_queue(gone):
            if gone.is_set():
                raise ApiError(499, "the client closed the request", "invalid_request_error")
            raise self._busy(f"no run slot freed within {self.limits.queue_timeout_s:g} s")

    async def _wait_in_queue(self, gone: asyncio.Event) -> bool:
        """Wait for a slot passed on by `release`; False when the wait ended without one (or the client left)."""
        turn = self.loop.create_future()
        self.waiting.append(turn)
        hung_up = asyncio.ensure_future(gone.wait())
        try:
            await asyncio.wait({turn, hung_up}, timeout=self.limits.queue_timeout_s,
                               return_when=asyncio.FIRST_COMPLETED)  # fmt: skip
        finally:
            hung_up.cancel()
            granted = turn.done() and not turn.cancelled()
            if not granted:
                turn.cancel()
                self.waiting.remove(turn)
            elif gone.is_set() or asyncio.current_task().cancelling():
                self.release()  # the client left as its turn came: pass the slot on
                granted = False
        return granted

    def release(self) -> None:
        """Give a slot to the first request still waiting, else back to the pool."""
        while self.waiting:
            turn = self.waiting.popleft()
            if not turn.done():
                turn.set_result(None)
                return
        self.free += 1

    def release_soon(self) -> None:
        """`release` from any thread (a run ends in its worker thread)."""
        if self.loop is None:
            self.free += 1
            return
        try:
            self.loop.call_soon_threadsafe(self.release)
        except RuntimeError:  # the server (and its loop) is shutting down
            pass

    def _busy(self, why: str) -> ApiError:
        return ApiError(429, f"{why}; retry shortly", "rate_limit_error",
                        headers={"Retry-After": str(self.limits.retry_after_s)})  # fmt: skip
