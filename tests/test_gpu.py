"""The CUDA path (device auto -> cuda + bfloat16) end to end. Skipped on machines without a CUDA GPU."""

from __future__ import annotations

import pytest
import torch

from graphs.api import AskOptions, ExtractThink
from tools.tiny.forced import Script, think, tool_call
from tools.backends.base import Message, ReasonRequest, SamplingSettings
from tools.backends.hf_reasoner import TransformersReasoner
from tools.backends.loading import Placement
from tools.tiny.models import PERCEIVER_BUILDERS

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU (none on this machine)")
FAMILIES = list(PERCEIVER_BUILDERS)  # every family the docs name as a perceiver


def test_auto_placement_is_cuda_bfloat16():
    assert Placement().resolve() == ("cuda", torch.bfloat16)


@pytest.mark.parametrize("family", FAMILIES)
def test_every_regime_on_cuda(tiny, image_path, family):
    script = Script(think("look") + tool_call("the square"), tool_call("the edge", region=[0, 0, 0.5, 0.5]),
                    "Answer: A", "the square", "Answer: B", "Answer: A")
    reasoner = TransformersReasoner(str(tiny.reasoner), extra_logits_processors=script)
    agent = ExtractThink(reasoner=reasoner, perceiver=str(tiny.perceivers[family]))
    settings = AskOptions(greedy=True, perceiver_max_new_tokens=8)
    results = {mode: agent.ask("Colour?", [image_path], ["red", "blue"], mode=mode, settings=settings)
               for mode in ("iterative", "extract", "caption", "direct")}
    assert results["iterative"].extraction_calls == 2 and results["iterative"].answer == "A"
    assert results["extract"].answer == "B" and results["caption"].answer == "A"
    _, model = agent.perceiver.load()
    assert model.device.type == "cuda" and model.dtype == torch.bfloat16
    assert all(s.output_tokens > 0 for r in results.values() for s in r.steps if s.kind == "extract")


def test_thinking_budget_on_cuda(tiny):
    reasoner = TransformersReasoner(str(tiny.reasoner))
    out = reasoner.reason([ReasonRequest((Message("user", "Think."),),
                                         SamplingSettings(greedy=True, max_new_tokens=30, thinking_budget=8))])[0]
    assert "</think>" in out.raw and out.thinking_tokens <= 8
