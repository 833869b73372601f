"""Nothing the reasoner writes breaks a run: repaired boxes, zoom into crops, failing calls, budget order,
the final turn, and a fuzz of the tool path. Real generate calls (reasoner forced by script), real perceivers."""

from __future__ import annotations

import json
import math
import random

import pytest
import torch

from agent import prompts
from tools import perception
from graphs.api import AskOptions, ExtractThink
from tools.tiny.forced import Script, tool_call
from tools.backends.base import PerceiveRequest
from tools.backends.hf_perceiver import TransformersPerceiver
from tools.backends.hf_reasoner import TransformersReasoner
from tools.backends.loading import Placement
from tools.images.pixels import crop_region, load_image

OPTIONS = ["red", "blue"]
FAST = dict(greedy=True, perceiver_max_new_tokens=8)


def agent_with(tiny, script, family="llava_onevision", perceiver=None) -> ExtractThink:
    reasoner = TransformersReasoner(str(tiny.reasoner), extra_logits_processors=script)
    return ExtractThink(reasoner=reasoner, perceiver=perceiver or str(tiny.perceivers[family]), device="cpu")


def tools_of(request):
    return [m.content for m in request.messages if m.role == "tool"]


def raw_call(arguments) -> str:
    return "<tool_call>\n" + json.dumps({"name": "extract", "arguments": arguments}) + "\n</tool_call>"


def test_a_sliver_region_runs_on_qwen2_5_vl_and_the_repair_is_told(tiny, image_path):
    """Issue 11: [0, 0, 0.0005, 1] made the Qwen2.5-VL processor raise (aspect ratio over 200)."""
    script = Script(tool_call("the left edge", region=[0, 0, 0.0005, 1]), "Answer: A")
    result = agent_with(tiny, script, "qwen2_5_vl").ask("Colour?", [image_path], OPTIONS, settings=AskOptions(**FAST))
    step = result.steps[1]
    assert step.error is None and step.output and result.extraction_calls == 1
    assert step.repairs == ["grown around its centre to at least 32 px a side"]
    assert "Region repaired: grown around its centre" in tools_of(script.requests[1])[0]


def test_zoom_into_an_earlier_crop_uses_the_original_pixels(tiny, tmp_path):
    from PIL import Image, ImageDraw

    image_path = tmp_path / "big.png"
    img = Image.new("RGB", (640, 480), "white")
    ImageDraw.Draw(img).rectangle((400, 40, 500, 200), fill="red")
    img.save(image_path)
    script = Script(
        tool_call("the right half", region=[0.5, 0.0, 1.0, 1.0]),
        tool_call("the top left of that", region=[0.0, 0.0, 0.5, 0.5], image="crop_1"),
        tool_call("unknown crop", image="crop_7"),
        "Answer: A",
    )
    result = agent_with(tiny, script).ask("Colour?", [image_path], OPTIONS,
                                          settings=AskOptions(max_extractions=4, **FAST))
    first, second, third = [s for s in result.steps if s.kind == "extract"]
    assert first.crop_id == "crop_1" and second.crop_id == "crop_2"
    assert second.image_id == "crop_1" and second.region == [0.0, 0.0, 0.5, 0.5]
    assert second.source_image == "image_1" and second.source_region == [0.5, 0.0, 0.75, 0.5]
    assert "unknown image 'crop_7'" in third.error
    perceiver = TransformersPerceiver(str(tiny.perceivers["llava_onevision"]), Placement(device="cpu"))
    original = crop_region(load_image(image_path), (0.5, 0.0, 0.75, 0.5))
    direct = perceiver.perceive([PerceiveRequest(images=(original,), instruction=second.instruction,
                                                 max_new_tokens=8)])[0].text
    assert second.output == direct, "the nested crop is cut from the original image, not from the enlarged crop"
    assert 'name image "crop_2"' in tools_of(script.requests[2])[1]


class FailingPerceiver:
    """A real perceiver that fails on requests mentioning `trigger` with `error` (tests the graph's handling)."""

    def __init__(self, inner, trigger: str, error: Exception):
        self.inner, self.trigger, self.error = inner, trigger, error
        self.name = inner.name

    def load(self):
        return self.inner.load()

    def perceive(self, requests):
        if any(self.trigger in r.instruction for r in requests):
            raise self.error
        return self.inner.perceive(requests)


def test_a_failure_inside_the_call_costs_one_extraction_not_the_run(tiny, image_path):
    inner = TransformersPerceiver(str(tiny.perceivers["llava_onevision"]), Placement(device="cpu"))
    perceiver = FailingPerceiver(inner, "the bad part", ValueError("aspect ratio must be smaller than 200"))
    script = Script(tool_call("the bad part"), tool_call("the good part"), "Answer: B")
    result = agent_with(tiny, script, perceiver=perceiver).ask("Colour?", [image_path], OPTIONS,
                                                               settings=AskOptions(**FAST))
    failed, ok = [s for s in result.steps if s.kind == "extract"]
    assert "perception tool failed (ValueError: aspect ratio" in failed.error and ok.error is None
    assert tools_of(script.requests[1])[0].startswith("Error: the perception tool failed")
    assert result.answer == "B" and result.extraction_calls == 1


def test_a_failure_of_the_model_itself_ends_the_sample(tiny, image_path):
    inner = TransformersPerceiver(str(tiny.perceivers["llava_onevision"]), Placement(device="cpu"))
    perceiver = FailingPerceiver(inner, "anything", torch.OutOfMemoryError("CUDA out of memory"))
    script = Script(tool_call("anything"), "Answer: B")
    with pytest.raises(torch.OutOfMemoryError):
        agent_with(tiny, script, perceiver=perceiver).ask("Colour?", [image_path], OPTIONS,
                                                          settings=AskOptions(**FAST))


def test_with_one_call_left_a_malformed_call_written_first_does_not_take_the_valid_ones_place(tiny, image_path):
    script = Script(
        '<tool_call>\n{"name": "extract", "arguments": {"request": \n</tool_call>\n' + tool_call("the colour"),
        "Answer: B",
    )
    result = agent_with(tiny, script).ask("Colour?", [image_path], OPTIONS,
                                          settings=AskOptions(max_extractions=1, **FAST))
    assert result.extraction_calls == 1 and result.budget_spent
    replies = tools_of(script.requests[1])
    assert replies[0].startswith(prompts.NOT_RUN), "replies stay in written order; the malformed one is not run"
    assert not replies[1].startswith("Error") and replies[1].endswith(prompts.BUDGET_SPENT)


def test_budget_spent_is_said_once_and_the_last_turn_is_not_told_to_call_tools(tiny, image_path):
    script = Script(tool_call("one") + tool_call("two") + tool_call("three"), "Answer: A")
    result = agent_with(tiny, script).ask("Colour?", [image_path], OPTIONS,
                                          settings=AskOptions(max_extractions=1, **FAST))
    final = script.requests[-1]
    assert sum(m.content.count(prompts.BUDGET_SPENT) for m in final.messages) == 1
    assert tools_of(final)[1:] == [prompts.NOT_RUN, prompts.NOT_RUN + "\n\n" + prompts.BUDGET_SPENT]
    assert final.tools == () and final.messages[0].content == prompts.ITERATIVE_FINAL_SYSTEM
    assert "extract" not in final.messages[0].content
    assert result.answer == "A"


def test_first_look_gives_the_reasoner_a_description_before_its_first_turn(tiny, image_path):
    script = Script("Answer: A")
    result = agent_with(tiny, script).ask("Colour?", [image_path], OPTIONS,
                                          settings=AskOptions(first_look="caption", **FAST))
    look = result.steps[0]
    assert look.kind == "extract" and look.purpose == "look" and look.instruction == perception.GENERIC_INSTRUCTION
    assert f"First look at image_1: {look.output.strip()}" in script.requests[0].messages[1].content
    assert result.extraction_calls == 1 and not result.budget_spent


def _fuzz_arguments(rng: random.Random, long: int = 5000):
    junk = [None, True, 3, -1e308, math.nan, math.inf, "", " ", "x" * long, [], {}, {"a": {"b": [1, 2]}},
            [0.1, 0.2], [0, 0, 1, 1, 1], ["a", "b", "c", "d"], [math.nan] * 4, [1e9] * 4, [-5, 2, 3, 4]]
    box = [rng.choice([rng.random(), rng.uniform(-2, 3), rng.randint(0, 500), math.nan]) for _ in range(4)]
    choices = [
        {"request": rng.choice(junk)},
        {"request": "the sign", "region": rng.choice([box, *junk])},
        {"request": "the sign", "image": rng.choice(["image_1", "image_9", "crop_1", "crop_99", 7, None, "../x"])},
        {"request": "the sign", "extra": rng.choice(junk)},
        rng.choice(junk),
    ]
    return rng.choice(choices)


def test_fuzzed_tool_calls_never_crash_a_run(tiny, image_path):
    """Random and adversarial arguments written by the reasoner, through real generate calls."""
    rng = random.Random(0)
    turn = "".join(raw_call(_fuzz_arguments(rng, long=501)) for _ in range(10))
    turn += "<tool_call>{nested: [</tool_call><tool_call>\"just a string\"</tool_call><tool_call>"
    script = Script(turn, turn, "Answer: B")
    result = agent_with(tiny, script, "qwen2_5_vl").ask("Colour?", [image_path], OPTIONS,
                                                        settings=AskOptions(max_extractions=6, **FAST))
    assert result.answer == "B"
    replies = tools_of(script.requests[1])
    assert len(replies) == 13 and sum(r.startswith(prompts.NOT_RUN) for r in replies) == 7
    assert result.extraction_calls <= 6 and result.budget_spent


def test_a_hundred_fuzzed_calls_in_one_turn(tiny, image_path):
    """The extract node on 100 calls at once (unknown ids, NaN, huge numbers, nested objects, long requests)."""
    from langgraph.runtime import Runtime

    from agent import iterative as loop
    from tools.backends.output_parsing import ToolCall, ToolCallError
    from agent.state import AgentContext
    from agent.trace import ImageInfo
    from tools.images.pixels import ImageStore

    store = ImageStore()
    ref = store.add(image_path)
    perceiver = TransformersPerceiver(str(tiny.perceivers["qwen2_5_vl"]), Placement(device="cpu"))
    ctx = AgentContext(reasoner=None, perceiver=perceiver, store=store, perceiver_max_new_tokens=4,
                       max_extractions=8)
    rng = random.Random(2)
    calls, errors = [], []
    for i in range(100):
        args = _fuzz_arguments(rng)
        if i % 10 == 3:
            errors.append(ToolCallError(raw="{", error="the tool call is not valid JSON", index=i))
        else:
            name = "extract" if i % 17 else rng.choice(["zoom", "", "x" * 300])
            calls.append(ToolCall(name, args if isinstance(args, dict) else {"request": args}, f"call_{i}", i))
    images = [ImageInfo(id=ref.id, path=ref.path, width=ref.width, height=ref.height)]
    state = {"images": images, "extractions_left": 8, "pending_calls": calls, "pending_errors": errors,
             "crops": []}
    update = loop.extract(state, Runtime(context=ctx))
    assert len(update["history"]) == 100 and update["extractions_left"] == 0
    assert [m.tool_call_id for m in update["history"] if m.tool_call_id] == [c.id for c in calls]
    assert sum(m.content.startswith(prompts.NOT_RUN) for m in update["history"]) == 92
    assert update["history"][-1].content.endswith(prompts.BUDGET_SPENT)


def test_fuzzed_regions_on_real_perceivers(tiny, tmp_path):
    """Whatever region survives validation, every family's processor accepts its crop (8K image included)."""
    from PIL import Image

    from tools.boxes import BoxError, read_box

    big = tmp_path / "8k.png"
    Image.new("RGB", (7680, 4320), "white").save(big)
    img = load_image(big)
    rng = random.Random(1)
    boxes = [[0, 0, 0.0005, 1], [0, 0.9999, 1, 1], [7679, 0, 7680, 4320], [0.3, 0.3, 0.3, 0.3]]
    boxes += [[rng.uniform(-0.04, 1.04) for _ in range(4)] for _ in range(4)]
    crops = []
    for value in boxes:
        try:
            crops.append(crop_region(img, read_box(value, *img.size).box))
        except BoxError:
            continue
    from tools.images.pixels import fit_aspect

    for family in ("qwen2_5_vl", "llava_onevision", "idefics3", "internvl"):
        perceiver = TransformersPerceiver(str(tiny.perceivers[family]), Placement(device="cpu"))
        requests = [PerceiveRequest(images=(fit_aspect(c),), instruction="Describe.", max_new_tokens=2)
                    for c in [*crops[:3], img]]
        assert all(out.output_tokens >= 1 for out in perceiver.perceive(requests)), family


def test_the_terminal_shows_crops_and_repairs():
    from rich.console import Console

    from agent.trace import ExtractStep
    from graphs.cli.render import print_step

    console = Console(record=True, width=200)
    print_step(console, 2, ExtractStep(request="the sign", image_id="image_1", region=[0.1, 0.2, 0.3, 0.4],
                                       crop_id="crop_1", repairs=["corners swapped into [x0, y0, x1, y1] order"],
                                       output="a red sign"))
    text = console.export_text()
    assert "image_1 region [0.10, 0.20, 0.30, 0.40] -> crop_1" in text and "region repaired: corners swapped" in text
