"""OpenTelemetry traces of every run, in the OpenInference conventions that Phoenix and Langfuse read.

Design: one process-wide tracer, set up once (`configure`) from OTEL_EXPORTER_OTLP_ENDPOINT or an explicit
endpoint. Three hook points, none inside a backend:
- graph-run and node spans (kind CHAIN) come from a LangChain callback handler registered through
  langchain_core's configure hook, so every LangGraph run of the process (ask, chat, eval, serve) is traced
  without a change to the graphs;
- model spans (kind LLM) come from a thin proxy over the Reasoner protocol that `live_context` hands the
  nodes: one place for every backend, with the exact messages the model was sent;
- extraction spans (kind TOOL, with the perceiver's LLM span inside) are written from the ExtractSteps a node
  returns: the trace steps already carry every field, so no extraction code knows about telemetry.
The attribute names (OpenInference) are built in agent/openinference.py.
Spans leave through a BatchSpanProcessor: a run never waits for the collector, and a collector that is down
costs one logged line, not a failed or slower run. Images are exported only with XTHINK_OTEL_IMAGES=1, and then
as small thumbnails. `opentelemetry-sdk` is optional (the `[otel]` extra) and imported only when enabled.
"""

from __future__ import annotations

import atexit
import logging
import os
import threading
import time
from collections import OrderedDict
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field, replace
from typing import Any
from uuid import UUID

from langchain_core.callbacks import BaseCallbackHandler

from agent import openinference as oi

log = logging.getLogger(__name__)

ENDPOINT_ENV = "OTEL_EXPORTER_OTLP_ENDPOINT"
IMAGES_ENV = "XTHINK_OTEL_IMAGES"
# One export (retries included) gives up after this. It runs off the run's thread; at exit, a dead collector
# delays the process by at most this much (later batches are dropped at once, see _LogOnce).
EXPORT_TIMEOUT_S = 2.0
MAX_OPEN_SPANS = 4096  # runs that never end (a killed client) cannot grow the table without bound
PROJECT = "extract-think"
_OTLP_LOGGER = "opentelemetry.exporter.otlp.proto.http.trace_exporter"  # the exporter and its HTTP client


class TelemetryError(RuntimeError):
    """Tracing was asked for but cannot start (the extra is missing, the endpoint is not a URL)."""


@dataclass
class _Setup:
    tracer: Any = None
    provider: Any = None
    endpoint: str | None = None
    images: bool = False
    exporter: Any = None
    warned: bool = False
    atexit: bool = False
    lock: threading.Lock = field(default_factory=threading.Lock)


_SETUP = _Setup()
_HOOK: ContextVar | None = None  # the configure hook's variable, registered once per process


def configure(endpoint: str | None = None) -> bool:
    """Start exporting spans to `endpoint` (an OTLP/HTTP base URL, or a full `.../v1/traces` URL), else to
    OTEL_EXPORTER_OTLP_ENDPOINT; without either, tracing stays off. Once per process: a second call is a no-op
    and returns whether tracing is on."""
    url = endpoint or os.environ.get(ENDPOINT_ENV, "").strip() or None
    with _SETUP.lock:
        if _SETUP.tracer is not None or url is None:
            return _SETUP.tracer is not None
        if not url.startswith(("http://", "https://")):
            raise TelemetryError(f"the OTLP endpoint must be an http(s) URL, got {url!r}")
        _SETUP.tracer, _SETUP.provider = _tracer(_traces_url(url))
        _SETUP.endpoint = url
        _SETUP.images = os.environ.get(IMAGES_ENV, "") not in ("", "0", "false")
        _SETUP.warned = False
        _register_handler()
    return True


def enabled() -> bool:
    return _SETUP.tracer is not None


def shutdown() -> None:
    """Send what is queued and stop tracing (tests; a process's exit does the same by itself)."""
    with _SETUP.lock:
        provider, _SETUP.tracer, _SETUP.provider = _SETUP.provider, None, None
    if _SETUP.exporter is not None:
        _SETUP.exporter.closing = True
    if provider is not None:
        provider.shutdown()
    _HANDLER.clear()


def _traces_url(url: str) -> str:
    url = url.rstrip("/")
    return url if url.endswith("/v1/traces") else url + "/v1/traces"


def _tracer(url: str):
    """A private provider (the application's global one is left alone) with a batching, quiet exporter."""
    try:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor
    except ImportError:
        raise TelemetryError("OpenTelemetry export needs the otel extra: pip install 'extract-think[otel]'") from None
    # Phoenix files spans under the resource's project: ours get their own project rather than "default".
    resource = Resource.create({"service.name": PROJECT, "openinference.project.name": PROJECT})
    provider = TracerProvider(resource=resource, shutdown_on_exit=False)  # our atexit hook closes it
    exporter = _LogOnce(OTLPSpanExporter(endpoint=url, timeout=EXPORT_TIMEOUT_S), url)
    provider.add_span_processor(BatchSpanProcessor(exporter, max_queue_size=2048))
    _SETUP.exporter = exporter
    quiet = logging.getLogger(_OTLP_LOGGER)
    if not any(isinstance(f, _Silenced) for f in quiet.filters):
        quiet.addFilter(_Silenced())
    if not _SETUP.atexit:
        atexit.register(shutdown)
        _SETUP.atexit = True
    return provider.get_tracer("extract-think"), provider


class _Silenced(logging.Filter):
    """The OTLP exporter logs every failed batch; `_LogOnce` says it once instead."""

    def filter(self, record: logging.LogRecord) -> bool:
        return False


class _LogOnce:
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


def _register_handler() -> None:
    """Make every LangChain/LangGraph run of the process call `_HANDLER` (the mechanism LangSmith's tracer
    uses). The variable's default is the handler itself, so threads that never saw `configure` see it too."""
    global _HOOK
    if _HOOK is None:
        from langchain_core.tracers.context import register_configure_hook

        _HOOK = ContextVar("xthink_otel_handler", default=_HANDLER)
        register_configure_hook(_HOOK, inheritable=True)


# ---------------------------------------------------------------- eval samples


@dataclass
class _Scope:
    span: Any
    claimed: bool = False


_SCOPE: ContextVar[_Scope | None] = ContextVar("xthink_otel_scope", default=None)


@contextmanager
def sample_span(**attributes: Any):
    """The root span of one eval sample (its id and regime as attributes): the graph run inside becomes its
    child, so every sample is one trace even though the eval graph itself runs all samples."""
    tracer = _SETUP.tracer
    if tracer is None:
        yield
        return
    from opentelemetry import context as otel_context

    span = tracer.start_span("sample", context=otel_context.Context(),
                             attributes={"openinference.span.kind": "CHAIN", **_xthink(attributes)})  # fmt: skip
    token = _SCOPE.set(_Scope(span))
    try:
        yield
    except BaseException as exc:
        _fail(span, exc)
        raise
    finally:
        _SCOPE.reset(token)
        span.end()


def _xthink(attributes: dict) -> dict:
    return {f"xthink.{key}": value for key, value in attributes.items() if value is not None}


# ---------------------------------------------------------------- graph and node spans


@dataclass
class _Open:
    span: Any
    graph: bool
    inputs: Any = None
    perceiver: str | None = None


class _Handler(BaseCallbackHandler):
    """Graph runs and their nodes as CHAIN spans; routers and other helper runnables are left out."""

    run_inline = True  # called on the run's own thread, so the proxy below finds the node's span

    def __init__(self):
        self._open: OrderedDict[UUID, _Open] = OrderedDict()
        self._lock = threading.Lock()

    def clear(self) -> None:
        with self._lock:
            self._open.clear()

    def node_span(self, run_id: UUID | None) -> _Open | None:
        with self._lock:
            return self._open.get(run_id) if run_id is not None else None

    def on_chain_start(self, serialized, inputs, *, run_id, parent_run_id=None, tags=None, metadata=None, **kw):
        tracer = _SETUP.tracer
        if tracer is None:
            return
        name = kw.get("name") or "graph"
        parent = self.node_span(parent_run_id)
        scope = _SCOPE.get()
        is_node = parent is not None and parent.graph and (metadata or {}).get("langgraph_node") == name
        if is_node:
            span = tracer.start_span(name, context=_in(parent.span), attributes={"openinference.span.kind": "CHAIN"})
            self._keep(run_id, _Open(span, graph=False, inputs=inputs))
        elif scope is not None and not scope.claimed:
            scope.claimed = True
            self._keep(run_id, _Open(self._graph_span(tracer, name, inputs, _in(scope.span)), True, inputs))
        elif parent_run_id is None:
            self._keep(run_id, _Open(self._graph_span(tracer, name, inputs, None), True, inputs))
        # Anything else (routers, a graph run inside a node outside an eval sample) stays out of the trace.

    def _graph_span(self, tracer, name: str, inputs, context):
        from opentelemetry import context as otel_context

        attributes = {"openinference.span.kind": "CHAIN", "input.value": oi.question(inputs)}
        return tracer.start_span(name, context=context or otel_context.get_current(), attributes=attributes)

    def _keep(self, run_id: UUID, item: _Open) -> None:
        with self._lock:
            self._open[run_id] = item
            while len(self._open) > MAX_OPEN_SPANS:
                _, stale = self._open.popitem(last=False)
                stale.span.end()

    def _pop(self, run_id: UUID) -> _Open | None:
        with self._lock:
            return self._open.pop(run_id, None)

    def on_chain_end(self, outputs, *, run_id, **kw):
        item = self._pop(run_id)
        if item is None:
            return
        try:
            if item.graph:
                _close_graph(item.span, outputs)
            else:
                _close_node(item, outputs)
        finally:
            item.span.end()

    def on_chain_error(self, error, *, run_id, **kw):
        item = self._pop(run_id)
        if item is None:
            return
        if type(error).__name__ == "GraphInterrupt":  # a pause for the application, not a failure
            item.span.set_attribute("xthink.interrupted", True)
        else:
            _fail(item.span, error)
        item.span.end()


_HANDLER = _Handler()


def _in(span):
    from opentelemetry import trace

    return trace.set_span_in_context(span)


def _fail(span, error: BaseException) -> None:
    from opentelemetry.trace import Status, StatusCode

    span.record_exception(error)
    span.set_status(Status(StatusCode.ERROR, f"{type(error).__name__}: {error}"[:500]))


def _close_graph(span, outputs) -> None:
    attributes = oi.run_attributes(outputs)
    span.set_attributes(attributes)
    if attributes.get("xthink.mode"):
        span.update_name(f"{attributes['xthink.mode']} run")


def _close_node(item: _Open, outputs) -> None:
    """Spans for the extractions the node made, laid back to back so that they end when the node does."""
    from agent.trace import ExtractStep

    steps = outputs.get("steps", []) if isinstance(outputs, dict) else []
    extracts = [s for s in steps if isinstance(s, ExtractStep)]
    images = {i.id: i.path for i in (item.inputs or {}).get("images", [])} if isinstance(item.inputs, dict) else {}
    end = time.time_ns()
    for step in reversed(extracts):
        start = end - int(step.seconds * 1e9)
        _extract_span(item, step, images, start, end)
        end = start
    item.span.set_attribute("xthink.steps", len(steps))


def _extract_span(item: _Open, step, images: dict[str, str], start: int, end: int) -> None:
    """A TOOL span (what was asked, where, what came back) holding the perceiver's LLM span; the end-to-end
    `direct` call is the perceiver answering, so it is only the LLM span."""
    tracer = _SETUP.tracer
    parent = item.span
    if step.purpose != "direct":
        attributes = oi.tool_attributes(step)
        if _SETUP.images:
            attributes["xthink.image.url"] = oi.thumbnail(images.get(step.source_image or ""), step.source_region)
        parent = tracer.start_span("extract", context=_in(item.span), start_time=start, attributes=_set(attributes))
        if step.error is not None:
            from opentelemetry.trace import Status, StatusCode

            parent.set_status(Status(StatusCode.ERROR, step.error[:500]))
    if step.error is None or step.purpose == "direct":
        _perceiver_span(parent, item.perceiver, step, start, end)
    if parent is not item.span:
        parent.end(end_time=end)


def _perceiver_span(parent, model: str | None, step, start: int, end: int) -> None:
    attributes = _set(oi.perceiver_attributes(model, step))
    _SETUP.tracer.start_span("perceive", context=_in(parent), start_time=start, attributes=attributes).end(end_time=end)


def _set(attributes: dict) -> dict:
    """OpenTelemetry refuses None values: an unset field is left out."""
    return {key: value for key, value in attributes.items() if value is not None}


# ---------------------------------------------------------------- model spans


def traced(ctx):
    """The context a node uses: with a reasoner that writes an LLM span per call while tracing is on."""
    if _SETUP.tracer is None:
        return ctx
    node = _guarded(_current_node)
    if node is not None and ctx.perceiver is not None:
        node.perceiver = ctx.perceiver.name
    if ctx.reasoner is None or isinstance(ctx.reasoner, TracedReasoner):
        return ctx
    return replace(ctx, reasoner=TracedReasoner(ctx.reasoner))


def _current_node() -> _Open | None:
    return _HANDLER.node_span(_current_run_id())


def _current_run_id() -> UUID | None:
    """The node run that is executing on this thread (LangGraph keeps its config in a context variable)."""
    try:
        from langgraph.config import get_config

        callbacks = get_config().get("callbacks")
    except RuntimeError:  # called outside a graph run
        return None
    return getattr(callbacks, "parent_run_id", None)


class TracedReasoner:
    """A Reasoner that writes one LLM span per request around the real one; everything else passes through."""

    def __init__(self, inner):
        self.inner = inner

    def __getattr__(self, name: str):
        return getattr(self.inner, name)

    def reason(self, requests):
        tracer = _SETUP.tracer
        if tracer is None:
            return self.inner.reason(requests)
        spans = _guarded(self._open_spans, tracer, requests) or []
        try:
            outputs = self.inner.reason(requests)
        except BaseException as exc:
            for span in spans:
                _fail(span, exc)
                span.end()
            raise
        _guarded(_close_spans, spans, outputs)
        return outputs

    def _open_spans(self, tracer, requests) -> list:
        node = _current_node()
        context = _in(node.span) if node is not None else None
        return [tracer.start_span("reason", context=context, attributes=oi.request_attributes(self.inner.name, r))
                for r in requests]  # fmt: skip


def _close_spans(spans: list, outputs: list) -> None:
    for span, output in zip(spans, outputs):
        span.set_attributes(oi.output_attributes(output))
        span.end()


def _guarded(fn, *args):
    """Telemetry inside a node never fails the run: a bug here costs the spans, logged once."""
    try:
        return fn(*args)
    except Exception:
        if not _SETUP.warned:
            _SETUP.warned = True
            log.warning("OpenTelemetry: could not record a model span", exc_info=True)
        return None
