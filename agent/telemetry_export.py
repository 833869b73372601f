"""How spans leave the process: a private tracer provider with a batching OTLP/HTTP exporter that never makes
a run wait or fail.

Spans leave through a BatchSpanProcessor: a run never waits for the collector, and a collector that is down
costs one logged line, not a failed or slower run.
"""

from __future__ import annotations

import logging

log = logging.getLogger("agent.telemetry")  # one logger for all of tracing

# One export (retries included) gives up after this. It runs off the run's thread; at exit, a dead collector
# delays the process by at most this much (later batches are dropped at once, see LogOnce).
EXPORT_TIMEOUT_S = 2.0
_OTLP_LOGGER = "opentelemetry.exporter.otlp.proto.http.trace_exporter"  # the exporter and its HTTP client


def new_provider(url: str, project: str):
    """A private provider (the application's global one is left alone) with a batching, quiet exporter; its
    spans are filed under `project`. Raises ImportError without the otel extra."""
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    # Phoenix files spans under the resource's project: ours get their own project rather than "default".
    resource = Resource.create({"service.name": project, "openinference.project.name": project})
    provider = TracerProvider(resource=resource, shutdown_on_exit=False)  # our atexit hook closes it
    exporter = LogOnce(OTLPSpanExporter(endpoint=url, timeout=EXPORT_TIMEOUT_S), url)
    provider.add_span_processor(BatchSpanProcessor(exporter, max_queue_size=2048))
    quiet = logging.getLogger(_OTLP_LOGGER)
    if not any(isinstance(f, _Silenced) for f in quiet.filters):
        quiet.addFilter(_Silenced())
    return provider, exporter


class _Silenced(logging.Filter):
    """The OTLP exporter logs every failed batch; `LogOnce` says it once instead."""

    def filter(self, record: logging.LogRecord) -> bool:
        return False


class LogOnce:
    """A span exporter that logs the first failure (and a recovery), never each batch, and never raises."""

    def __init__(self, inner, url: str):
        self.inner, self.url, self.failing = inner, url, False
        self.closing = False  # set at shutdown: a collector known to be down is not waited for again

    def export(self, spans):
        from opentelemetry.sdk.trace.export import SpanExportResult

        if self.closing and self.failing:
            return SpanExportResult.FAILURE
        try:
            result = self.inner.export(spans)
        except Exception:  # noqa: BLE001 - a broken collector must never reach the run
            result = SpanExportResult.FAILURE
        if result != SpanExportResult.SUCCESS and not self.failing:
            log.warning("OpenTelemetry: cannot export spans to %s; the runs go on without traces", self.url)
        elif result == SpanExportResult.SUCCESS and self.failing:
            log.warning("OpenTelemetry: exporting to %s again", self.url)
        self.failing = result != SpanExportResult.SUCCESS
        return result

    def shutdown(self):
        self.inner.shutdown()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return self.inner.force_flush(timeout_millis)
