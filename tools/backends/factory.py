"""Pick the backend a model string names: transformers (hub id, folder), vLLM (`vllm:`), or HTTP (URL)."""

from __future__ import annotations

from tools.backends.base import Perceiver, Reasoner
from tools.backends.loading import Placement
from tools.backends.spec import parse_model


def make_reasoner(model: str, placement: Placement = Placement()) -> Reasoner:
    kind = parse_model(model, "reasoner").kind
    if kind == "http":
        from tools.backends.http_backend import HttpReasoner

        return HttpReasoner(model)
    if kind == "vllm":
        from tools.backends.vllm_backend import VllmReasoner

        return VllmReasoner(model)
    from tools.backends.hf_reasoner import TransformersReasoner

    return TransformersReasoner(model, placement)


def make_perceiver(model: str, placement: Placement = Placement()) -> Perceiver:
    kind = parse_model(model, "perceiver").kind
    if kind == "http":
        from tools.backends.http_backend import HttpPerceiver

        return HttpPerceiver(model)
    if kind == "vllm":
        from tools.backends.vllm_backend import VllmPerceiver

        return VllmPerceiver(model)
    from tools.backends.hf_perceiver import TransformersPerceiver

    return TransformersPerceiver(model, placement)
