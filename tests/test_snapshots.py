"""Snapshots of what must not drift silently: graph topologies and the exact prompts of each regime."""

from __future__ import annotations

import pytest

from graphs import assistant, iterative, single
from graphs.api import AskOptions, ExtractThink
from tools.tiny.forced import Script, think, tool_call
from tests.snapshot import assert_snapshot
from tools.backends.base import PerceiveRequest
from tools.backends.hf_perceiver import TransformersPerceiver
from tools.backends.hf_reasoner import TransformersReasoner
from tools.backends.loading import Placement

OPTIONS = ["red", "blue"]
QUESTION = "What colour is the square?"


@pytest.mark.parametrize("name, graph", [
    ("iterative", iterative.graph), ("extract", single.extract_graph),
    ("caption", single.caption_graph), ("direct", single.direct_graph), ("assistant", assistant.graph),
])
def test_graph_topology(name, graph):
    assert_snapshot(f"graph_{name}.mmd", graph.get_graph().draw_mermaid())


def _run(tiny, image_path, mode, script, **settings):
    reasoner = TransformersReasoner(str(tiny.reasoner), Placement(device="cpu"), extra_logits_processors=script)
    agent = ExtractThink(reasoner=reasoner, perceiver=str(tiny.perceivers["llava_onevision"]), device="cpu")
    result = agent.ask(QUESTION, [image_path], OPTIONS, mode=mode,
                       settings=AskOptions(greedy=True, perceiver_max_new_tokens=6, **settings))
    return reasoner, result


def _rendered(reasoner, script) -> str:
    return "\n=====\n".join(reasoner.render(r) for r in script.requests)


def test_iterative_prompts(tiny, image_path):
    script = Script(think("look") + tool_call("the square", region=[0, 0, 0.5, 0.5]), "Answer: A")
    reasoner, result = _run(tiny, image_path, "iterative", script, max_extractions=1)
    # The perceiver output is random text; replace it so the snapshot pins the prompt, not the weights.
    text = _rendered(reasoner, script).replace(result.steps[1].output, "<PERCEIVER OUTPUT>")
    assert_snapshot("prompt_iterative.txt", text + "\n=====\n" + result.steps[1].instruction)


@pytest.mark.parametrize("mode, thinking", [("extract", True), ("caption", True), ("caption", False)])
def test_single_pass_prompts(tiny, image_path, mode, thinking):
    turns = (["the square"] if mode == "extract" else []) + ["Answer: A"]
    script = Script(*turns)
    reasoner, result = _run(tiny, image_path, mode, script, thinking=thinking)
    outputs = [s.output for s in result.steps if s.kind == "extract"]
    text = _rendered(reasoner, script)
    for out in outputs:
        text = text.replace(f"Description: {out.strip()}", "Description: <PERCEIVER OUTPUT>")
    instructions = "\n".join(s.instruction for s in result.steps if s.kind == "extract")
    assert_snapshot(f"prompt_{mode}_{'think' if thinking else 'nothink'}.txt", text + "\n=====\n" + instructions)


def test_direct_prompt(tiny, image_path):
    perceiver = TransformersPerceiver(str(tiny.perceivers["llava_onevision"]), Placement(device="cpu"))
    from agent.prompts import direct_prompt
    from PIL import Image

    request = PerceiveRequest((Image.new("RGB", (8, 8)),), direct_prompt(QUESTION, OPTIONS))
    assert_snapshot("prompt_direct.txt", perceiver.render(request))


def test_eval_graph_topology():
    from graphs import eval as eval_graph

    assert_snapshot("graph_eval.mmd", eval_graph.graph.get_graph().draw_mermaid())


def test_langgraph_json_lists_every_compiled_graph():
    import importlib
    import json
    from pathlib import Path

    spec = json.loads((Path(__file__).resolve().parents[1] / "langgraph.json").read_text())
    for name, target in spec["graphs"].items():
        module, attr = target.removeprefix("./").replace(".py", "").replace("/", ".").split(":")
        assert hasattr(importlib.import_module(module), attr), name
