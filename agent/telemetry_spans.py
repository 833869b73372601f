"""Graph-run, node and extraction spans, and the root span of an eval sample.

Graph-run and node spans (kind CHAIN) come from a LangChain callback handler (agent/telemetry.py registers it
through langchain_core's configure hook), so every LangGraph run of the process (ask, chat, eval, serve) is
traced without a change to the graphs. Extraction spans (kind TOOL, with the perceiver's LLM span inside) are
written from the ExtractSteps a node returns: the trace steps already carry every field, so no extraction code
knows about telemetry. Images are exported only with XTHINK_OTEL_IMAGES=1, and then as small thumbnails.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from langchain_core.callbacks import BaseCallbackHandler

from agent import openinference as oi
from agent.telemetry_tracer import SETUP, fail, in_span

MAX_OPEN_SPANS = 4096  # runs that never end (a killed client) cannot grow the table without bound


@dataclass
class _Scope:
    span: Any
    claimed: bool = False


_SCOPE: ContextVar[_Scope | None] = ContextVar("xthink_otel_scope", default=None)


@contextmanager
def sample_span(**attributes: Any):
    """The root span of one eval sample (its id and regime as attributes): the graph run inside becomes its
    child, so every sample is one trace even though the eval graph itself runs all samples."""
    tracer = SETUP.tracer
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
        fail(span, exc)
        raise
    finally:
        _SCOPE.reset(token)
        span.end()


def _xthink(attributes: dict) -> dict:
    return {f"xthink.{key}": value for key, value in attributes.items() if value is not None}


@dataclass
class OpenSpan:
    """A graph-run or node span still open, with what its end needs (the node's input, its perceiver)."""

    span: Any
    graph: bool
    inputs: Any = None
    perceiver: str | None = None


class _Handler(BaseCallbackHandler):
    """Graph runs and their nodes as CHAIN spans; routers and other helper runnables are left out."""

    run_inline = True  # called on the run's own thread, so the proxy below finds the node's span

    def __init__(self):
        self._open: OrderedDict[UUID, OpenSpan] = OrderedDict()
        self._lock = threading.Lock()

    def clear(self) -> None:
        with self._lock:
            self._open.clear()

    def node_span(self, run_id: UUID | None) -> OpenSpan | None:
        with self._lock:
            return self._open.get(run_id) if run_id is not None else None

    def on_chain_start(self, serialized, inputs, *, run_id, parent_run_id=None, tags=None, metadata=None, **kw):
        tracer = SETUP.tracer
        if tracer is None:
            return
        name = kw.get("name") or "graph"
        parent = self.node_span(parent_run_id)
        scope = _SCOPE.get()
        is_node = parent is not None and parent.graph and (metadata or {}).get("langgraph_node") == name
        if is_node:
            span = tracer.start_span(name, context=in_span(parent.span),
                                     attributes={"openinference.span.kind": "CHAIN"})  # fmt: skip
            self._keep(run_id, OpenSpan(span, graph=False, inputs=inputs))
        elif scope is not None and not scope.claimed:
            scope.claimed = True
            self._keep(run_id, OpenSpan(self._graph_span(tracer, name, inputs, in_span(scope.span)), True, inputs))
        elif parent_run_id is None:
            self._keep(run_id, OpenSpan(self._graph_span(tracer, name, inputs, None), True, inputs))
        # Anything else (routers, a graph run inside a node outside an eval sample) stays out of the trace.

    def _graph_span(self, tracer, name: str, inputs, context):
        from opentelemetry import context as otel_context

        attributes = {"openinference.span.kind": "CHAIN", "input.value": oi.question(inputs)}
        return tracer.start_span(name, context=context or otel_context.get_current(), attributes=attributes)

    def _keep(self, run_id: UUID, item: OpenSpan) -> None:
        with self._lock:
            self._open[run_id] = item
            while len(self._open) > MAX_OPEN_SPANS:
                _, stale = self._open.popitem(last=False)
                stale.span.end()

    def _pop(self, run_id: UUID) -> OpenSpan | None:
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
            fail(item.span, error)
        item.span.end()


HANDLER = _Handler()


def _close_graph(span, outputs) -> None:
    attributes = oi.run_attributes(outputs)
    span.set_attributes(attributes)
    if attributes.get("xthink.mode"):
        span.update_name(f"{attributes['xthink.mode']} run")


def _close_node(item: OpenSpan, outputs) -> None:
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


def _extract_span(item: OpenSpan, step, images: dict[str, str], start: int, end: int) -> None:
    """A TOOL span (what was asked, where, what came back) holding the perceiver's LLM span; the end-to-end
    `direct` call is the perceiver answering, so it is only the LLM span."""
    tracer = SETUP.tracer
    parent = item.span
    if step.purpose != "direct":
        attributes = oi.tool_attributes(step)
        if SETUP.images:
            attributes["xthink.image.url"] = oi.thumbnail(images.get(step.source_image or ""), step.source_region)
        parent = tracer.start_span("extract", context=in_span(item.span), start_time=start, attributes=_set(attributes))
        if step.error is not None:
            from opentelemetry.trace import Status, StatusCode

            parent.set_status(Status(StatusCode.ERROR, step.error[:500]))
    if step.error is None or step.purpose == "direct":
        _perceiver_span(parent, item.perceiver, step, start, end)
    if parent is not item.span:
        parent.end(end_time=end)


def _perceiver_span(parent, model: str | None, step, start: int, end: int) -> None:
    attributes = _set(oi.perceiver_attributes(model, step))
    span = SETUP.tracer.start_span("perceive", context=in_span(parent), start_time=start, attributes=attributes)
    span.end(end_time=end)


def _set(attributes: dict) -> dict:
    """OpenTelemetry refuses None values: an unset field is left out."""
    return {key: value for key, value in attributes.items() if value is not None}
