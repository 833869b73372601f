"""The backends a model string names, created here and kept one per model per process.

Picking: transformers for a hub id or folder, vLLM for `vllm:`, HTTP for a URL (tools/backends/spec.py parses
the string); each backend's module is imported only when chosen, so vllm and torch stay lazy.

Sharing: every run, thread and server request gets the same backend object for the same model (`shared_*`).
Sharing the backend (not only its weights) is what lets concurrent runs meet in one batch and reuse each
other's KV caches: the engine, its batcher and caches live on the backend object. Creating a backend is
cheap; weights load on first use (tools/backends/loading.py keeps them once per process too). `make_*` build
a fresh, unshared one (a command with its own engine options, a test).
"""

from __future__ import annotations

import os
from importlib import import_module

from tools.backends.base import Perceiver, Reasoner
from tools.backends.loading import OncePerKey, Placement
from tools.backends.options import EngineOptions
from tools.backends.spec import parse_model

# (role, spec kind) -> (module, class).
BACKENDS = {
    ("reasoner", "http"): ("tools.backends.http_backend", "HttpReasoner"),
    ("reasoner", "vllm"): ("tools.backends.vllm_backend", "VllmReasoner"),
    ("reasoner", "hub"): ("tools.backends.hf_reasoner", "TransformersReasoner"),
    ("reasoner", "local"): ("tools.backends.hf_reasoner", "TransformersReasoner"),
    ("perceiver", "http"): ("tools.backends.http_backend", "HttpPerceiver"),
    ("perceiver", "vllm"): ("tools.backends.vllm_backend", "VllmPerceiver"),
    ("perceiver", "hub"): ("tools.backends.hf_perceiver", "TransformersPerceiver"),
    ("perceiver", "local"): ("tools.backends.hf_perceiver", "TransformersPerceiver"),
}

_SHARED = OncePerKey()  # per-key locks: creating one backend (an import, a vLLM engine) blocks no other


def _make(role: str, model: str, placement: Placement, options: EngineOptions):
    kind = parse_model(model, role).kind
    module, name = BACKENDS[(role, kind)]
    cls = getattr(import_module(module), name)
    if kind in ("hub", "local"):
        return cls(model, placement, options=options)
    if kind == "http":
        from tools.backends.http_client import HttpSettings

        return cls(model, HttpSettings(concurrency=options.concurrency, max_in_flight=options.max_in_flight))
    share = options.reasoner_gpu_memory if role == "reasoner" else options.perceiver_gpu_memory
    return cls(model, options=options, gpu_memory_utilization=share)


def make_reasoner(model: str, placement: Placement = Placement(), options: EngineOptions = EngineOptions()) -> Reasoner:
    return _make("reasoner", model, placement, options)


def make_perceiver(
    model: str, placement: Placement = Placement(), options: EngineOptions = EngineOptions()
) -> Perceiver:
    return _make("perceiver", model, placement, options)


def _shared(role: str, model: str, placement: Placement, options: EngineOptions):
    make = make_reasoner if role == "reasoner" else make_perceiver
    return _SHARED.get((role, model, placement, options), lambda: make(model, placement, options))


def shared_reasoner(
    model: str, placement: Placement = Placement(), options: EngineOptions = EngineOptions()
) -> Reasoner:
    return _shared("reasoner", model, placement, options)


def shared_perceiver(
    model: str, placement: Placement = Placement(), options: EngineOptions = EngineOptions()
) -> Perceiver:
    return _shared("perceiver", model, placement, options)


def env_placement(device: str | None = None) -> Placement:
    """The placement a server uses: the given device, else XTHINK_DEVICE, else auto."""
    return Placement(device=device or os.environ.get("XTHINK_DEVICE") or "auto")
