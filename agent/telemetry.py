"""OpenTelemetry traces of every run, in the OpenInference conventions that Phoenix and Langfuse read.

Design: one process-wide tracer, set up once (`configure`) from OTEL_EXPORTER_OTLP_ENDPOINT or an explicit
endpoint. Three hook points, none inside a backend:
- graph-run and node spans (kind CHAIN) come from a LangChain callback handler registered through
  langchain_core's configure hook (agent/telemetry_spans.py);
- model spans (kind LLM) come from a thin proxy over the Reasoner protocol that `live_context` hands the
  nodes (agent/telemetry_reasoner.py);
- extraction spans (kind TOOL, with the perceiver's LLM span inside) are written from the ExtractSteps a node
  returns (agent/telemetry_spans.py).
The attribute names (OpenInference) are built in agent/openinference.py; how spans leave the process, in
agent/telemetry_export.py. `opentelemetry-sdk` is optional (the `[otel]` extra) and imported only when enabled.
"""

from __future__ import annotations

import atexit
import os
from contextvars import ContextVar

from agent.telemetry_export import new_provider
from agent.telemetry_spans import HANDLER
from agent.telemetry_tracer import SETUP

ENDPOINT_ENV = "OTEL_EXPORTER_OTLP_ENDPOINT"
IMAGES_ENV = "XTHINK_OTEL_IMAGES"
PROJECT = "extract-think"
_HOOK: ContextVar | None = None  # the configure hook's variable, registered once per process


class TelemetryError(RuntimeError):
    """Tracing was asked for but cannot start (the extra is missing, the endpoint is not a URL)."""


def configure(endpoint: str | None = None) -> bool:
    """Start exporting spans to `endpoint` (an OTLP/HTTP base URL, or a full `.../v1/traces` URL), else to
    OTEL_EXPORTER_OTLP_ENDPOINT; without either, tracing stays off. Once per process: a second call is a no-op
    and returns whether tracing is on."""
    url = endpoint or os.environ.get(ENDPOINT_ENV, "").strip() or None
    with SETUP.lock:
        if SETUP.tracer is not None or url is None:
            return SETUP.tracer is not None
        if not url.startswith(("http://", "https://")):
            raise TelemetryError(f"the OTLP endpoint must be an http(s) URL, got {url!r}")
        SETUP.tracer, SETUP.provider = _tracer(_traces_url(url))
        SETUP.endpoint = url
        SETUP.images = os.environ.get(IMAGES_ENV, "") not in ("", "0", "false")
        SETUP.warned = False
        _register_handler()
    return True


def enabled() -> bool:
    return SETUP.tracer is not None


def shutdown() -> None:
    """Send what is queued and stop tracing (tests; a process's exit does the same by itself)."""
    with SETUP.lock:
        provider, SETUP.tracer, SETUP.provider = SETUP.provider, None, None
    if SETUP.exporter is not None:
        SETUP.exporter.closing = True
    if provider is not None:
        provider.shutdown()
    HANDLER.clear()


def _traces_url(url: str) -> str:
    url = url.rstrip("/")
    return url if url.endswith("/v1/traces") else url + "/v1/traces"


def _tracer(url: str):
    """The tracer and its provider; the provider is closed (what is queued sent) at the process's exit."""
    try:
        provider, SETUP.exporter = new_provider(url, PROJECT)
    except ImportError:
        raise TelemetryError("OpenTelemetry export needs the otel extra: pip install 'extract-think[otel]'") from None
    if not SETUP.atexit:
        atexit.register(shutdown)
        SETUP.atexit = True
    return provider.get_tracer("extract-think"), provider


def _register_handler() -> None:
    """Make every LangChain/LangGraph run of the process call `HANDLER` (the mechanism LangSmith's tracer
    uses). The variable's default is the handler itself, so threads that never saw `configure` see it too."""
    global _HOOK
    if _HOOK is None:
        from langchain_core.tracers.context import register_configure_hook

        _HOOK = ContextVar("xthink_otel_handler", default=HANDLER)
        register_configure_hook(_HOOK, inheritable=True)
