"""Model spans: one LLM span per reasoner call, written by a thin proxy over the Reasoner protocol that
`live_context` hands the nodes while tracing is on: one place for every backend, with the exact messages the
model was sent. A bug here costs the spans, never the run.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from uuid import UUID

from agent import openinference as oi
from agent.telemetry_spans import HANDLER, OpenSpan
from agent.telemetry_tracer import SETUP, fail, in_span

log = logging.getLogger("agent.telemetry")  # one logger for all of tracing


def traced(ctx):
    """The context a node uses: with a reasoner that writes an LLM span per call while tracing is on."""
    if SETUP.tracer is None:
        return ctx
    node = _guarded(_current_node)
    if node is not None and ctx.perceiver is not None:
        node.perceiver = ctx.perceiver.name
    if ctx.reasoner is None or isinstance(ctx.reasoner, TracedReasoner):
        return ctx
    return replace(ctx, reasoner=TracedReasoner(ctx.reasoner))


def _current_node() -> OpenSpan | None:
    return HANDLER.node_span(_current_run_id())


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
        tracer = SETUP.tracer
        if tracer is None:
            return self.inner.reason(requests)
        spans = _guarded(self._open_spans, tracer, requests) or []
        try:
            outputs = self.inner.reason(requests)
        except BaseException as exc:
            for span in spans:
                fail(span, exc)
                span.end()
            raise
        _guarded(_close_spans, spans, outputs)
        return outputs

    def _open_spans(self, tracer, requests) -> list:
        node = _current_node()
        context = in_span(node.span) if node is not None else None
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
        if not SETUP.warned:
            SETUP.warned = True
            log.warning("OpenTelemetry: could not record a model span", exc_info=True)
        return None
