"""Pick the backend a model string names: transformers (hub id, folder), vLLM (`vllm:`), or HTTP (URL)."""

from __future__ import annotations

from importlib import import_module

from tools.backends.base import Perceiver, Reasoner
from tools.backends.loading import Placement
from tools.backends.options import EngineOptions
from tools.backends.spec import parse_model

# (role, spec kind) -> (module, class). Modules are imported only when chosen: vllm and torch stay lazy.
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
