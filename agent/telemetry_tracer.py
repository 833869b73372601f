"""The process-wide tracer that agent/telemetry.py sets up once, and the two span helpers every span writer
(graph and node spans, model spans) uses. The OpenTelemetry imports stay inside the helpers: they run only
while tracing is on, and `opentelemetry-sdk` is an optional extra.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Setup:
    tracer: Any = None
    provider: Any = None
    endpoint: str | None = None
    images: bool = False  # XTHINK_OTEL_IMAGES: extraction spans carry a thumbnail of what was looked at
    exporter: Any = None
    warned: bool = False  # a telemetry bug was logged once already
    atexit: bool = False
    lock: threading.Lock = field(default_factory=threading.Lock)


SETUP = Setup()


def in_span(span):
    """A context whose current span is `span`, to start children in."""
    from opentelemetry import trace

    return trace.set_span_in_context(span)


def fail(span, error: BaseException) -> None:
    from opentelemetry.trace import Status, StatusCode

    span.record_exception(error)
    span.set_status(Status(StatusCode.ERROR, f"{type(error).__name__}: {error}"[:500]))
