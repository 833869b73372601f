"""Pick the backend a model string names: transformers (hub id, folder), vLLM (`vllm:`), or HTTP (URL)."""

from __future__ import annotations

from importlib import import_module

from tools.backends.base import Perceiver, Reasoner
from tools.backends.loading import Placement
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


def _make(role: str, model: str, placement: Placement):
    kind = parse_model(model, role).kind
    module, name = BACKENDS[(role, kind)]
    cls = getattr(import_module(module), name)
    return cls(model, placement) if kind in ("hub", "local") else cls(model)


def make_reasoner(model: str, placement: Placement = Placement()) -> Reasoner:
    return _make("reasoner", model, placement)


def make_perceiver(model: str, placement: Placement = Placement()) -> Perceiver:
    return _make("perceiver", model, placement)
