"""A request's run of the agent: in a worker thread, read by the request's coroutine, cancelled when its
client hangs up or its time is up.

Each request is stateless (OpenAI clients send the whole conversation) and runs the `assistant` graph once; the
models are shared, so concurrent requests meet in the backends' batches. A cancelled run's model calls stop at
the next token (tools/backends/cancel.py), so its slot frees within a second or two.
"""

from __future__ import annotations

import asyncio
import threading
import uuid
from collections.abc import Callable, Iterator

from fastapi import Request
from starlette.types import Receive

from graphs import assistant
from graphs.conversation import ChatTurn, TurnSettings, run_turn
from graphs.server.chat_request import to_chat_messages
from graphs.server.errors import ApiError, as_api_error
from tools.images.inputs import ImagePolicy

READY = object()  # the images were read and stored: the run itself starts


def run_events(agent, raw: list[dict], policy: ImagePolicy, max_images: int, turn: TurnSettings,
               release: Callable[[], None]):  # fmt: skip
    """The run's events (READY first); the slot is given back when the run ends, however it ends."""
    try:
        messages = to_chat_messages(raw, policy, max_images)
        yield READY
        yield from run_turn(agent, assistant.graph, {"messages": messages}, uuid.uuid4().hex, turn)
    finally:
        release()


class BackgroundRun:
    """A blocking run in a worker thread, started at once. It ends by itself, or at the next token once
    cancelled: when its deadline passes or its client goes away (`cancel`).

    At most MAX_PENDING events wait for a slow reader; then the run waits too (and, once cancelled, is closed)."""

    _DONE = object()
    MAX_PENDING = 1024

    def __init__(self, events: Iterator, timeout_s: float, cancel: threading.Event):
        self.loop = asyncio.get_running_loop()
        self.queue: asyncio.Queue = asyncio.Queue()
        self.timeout_s, self.deadline = timeout_s, self.loop.time() + timeout_s  # one deadline for the whole run
        self._cancel = cancel
        self._room = threading.Semaphore(self.MAX_PENDING)
        threading.Thread(target=self._pump, args=(events,), daemon=True, name="xthink-serve-run").start()

    def cancel(self) -> None:
        self._cancel.set()

    def _pump(self, events: Iterator) -> None:
        try:
            for event in events:
                if not self._wait_for_room():
                    events.close()  # cancelled and nobody reads: end the run here (its slot is given back)
                    break
                self.loop.call_soon_threadsafe(self.queue.put_nowait, event)
        except BaseException as exc:  # noqa: BLE001  (handed to the request, which answers with its code)
            self.loop.call_soon_threadsafe(self.queue.put_nowait, exc)
        self.loop.call_soon_threadsafe(self.queue.put_nowait, self._DONE)

    def _wait_for_room(self) -> bool:
        while not self._room.acquire(timeout=0.1):
            if self._cancel.is_set():
                return False
        return True

    async def ready(self) -> None:
        """Wait until the run's input was read: an error in it (a bad image) is raised here, as a 4xx."""
        async for event in self.events():
            if event is READY:
                return

    async def events(self):
        """The run's events as they come, until the run's deadline (which cancels it)."""
        while True:
            try:
                event = await asyncio.wait_for(self.queue.get(), max(0.0, self.deadline - self.loop.time()))
            except asyncio.TimeoutError:
                self.cancel()
                raise ApiError(504, f"the run took over {self.timeout_s:g} s", "server_error") from None
            if event is self._DONE:
                return
            if isinstance(event, BaseException):
                raise as_api_error(event)
            self._room.release()
            yield event

    async def turn(self) -> ChatTurn:
        last = None
        async for last in self.events():
            pass
        return last


class Hangup:
    """Watches a request's connection: when the client hangs up, `gone` is set and the run is cancelled."""

    def __init__(self, request: Request):
        self.gone = asyncio.Event()
        self.cancel = threading.Event()  # the run's cancel token (tools/backends/cancel.py)
        self._task = asyncio.ensure_future(self._watch(request.receive))

    async def _watch(self, receive: Receive) -> None:
        while True:  # the body was read: the next message is the disconnect (or the response's end)
            message = await receive()
            if message["type"] == "http.disconnect":
                self.gone.set()
                self.cancel.set()
                return

    def stop(self) -> None:
        """The response is complete: stop watching (a finished run has nothing left to cancel)."""
        self._task.cancel()


async def until_done(stream, run: BackgroundRun, hangup: Hangup):
    """The SSE stream; when it ends early (the client went away) the run is cancelled."""
    try:
        async for piece in stream:
            yield piece
    finally:
        run.cancel()
        hangup.stop()
