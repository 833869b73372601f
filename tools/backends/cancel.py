"""A run's cancel token on every request it makes: a reasoner or perceiver wrapped for one run.

A server cancels a run when its client hangs up or its time is up (graphs/server/background_run.py). Rather than every node
threading the token through, the run's context holds its models wrapped here: each request gets the token
(`ReasonRequest.cancel` / `PerceiveRequest.cancel`, which the in-process engines check at every token), a
call made after the cancel fails at once, and streamed text stops being relayed (which also ends an HTTP
backend's stream at its next chunk).
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import replace

from tools.backends.base import (
    PerceiveOutput,
    PerceiveRequest,
    ReasonOutput,
    ReasonRequest,
    check_cancel,
)


class _Cancellable:
    def __init__(self, inner, cancel: threading.Event):
        self.inner = inner
        self.cancel = cancel
        self.name = inner.name

    def load(self):
        return self.inner.load()

    def __getattr__(self, name: str):  # render, engine, spec ... of the wrapped backend
        return getattr(self.inner, name)


class CancellableReasoner(_Cancellable):
    def reason(self, requests: Sequence[ReasonRequest]) -> list[ReasonOutput]:
        check_cancel(self.cancel)
        return self.inner.reason([replace(r, cancel=self.cancel, on_text=self._relay(r.on_text)) for r in requests])

    def _relay(self, on_text):
        if on_text is None:
            return None

        def relay(text: str) -> None:
            check_cancel(self.cancel)
            on_text(text)

        return relay


class CancellablePerceiver(_Cancellable):
    def perceive(self, requests: Sequence[PerceiveRequest]) -> list[PerceiveOutput]:
        check_cancel(self.cancel)
        return self.inner.perceive([replace(r, cancel=self.cancel) for r in requests])


def with_cancel(reasoner, perceiver, cancel: threading.Event | None):
    """The run's (reasoner, perceiver): wrapped to carry `cancel`, or as given when there is none."""
    if cancel is None:
        return reasoner, perceiver
    return (CancellableReasoner(reasoner, cancel) if reasoner is not None else None,
            CancellablePerceiver(perceiver, cancel))  # fmt: skip
