"""Extract+Think, Caption+Think and the direct VLM, end to end through real generate calls."""

from __future__ import annotations

import pytest

from agent import prompts
from tools import perception
from agent.answer import extract_answer
from tools.backends.output_parsing import split_thinking
from graphs.api import AskOptions, ExtractThink
from tools.tiny.forced import Script, think
from tools.backends.base import PerceiveRequest
from tools.backends.hf_perceiver import TransformersPerceiver
from tools.backends.hf_reasoner import TransformersReasoner
from tools.backends.loading import Placement
from tools.images.pixels import load_image
from tools.tiny.models import PERCEIVER_BUILDERS

OPTIONS = ["red", "blue", "green", "white"]
FAMILIES = list(PERCEIVER_BUILDERS)  # every family the docs name as a perceiver
FAST = AskOptions(greedy=True, perceiver_max_new_tokens=12)


def agent_with(tiny, script, family="llava_onevision"):
    reasoner = TransformersReasoner(str(tiny.reasoner), extra_logits_processors=script)
    return ExtractThink(reasoner=reasoner, perceiver=str(tiny.perceivers[family]), device="cpu")


@pytest.mark.parametrize("family", FAMILIES)
def test_extract_then_think(tiny, image_path, family):
    script = Script("the square and its colour.", think("The description says red.") + "Answer: (a)")
    result = agent_with(tiny, script, family).ask("What colour is the square?", [image_path], OPTIONS,
                                                   mode="extract", settings=FAST)
    observe, extract, answer = result.steps
    assert (observe.purpose, extract.purpose, answer.purpose) == ("observe", "extract", "answer")
    assert extract.request == "the square and its colour"
    assert extract.instruction == perception.extraction_instruction("the square and its colour")
    assert script.requests[0].settings.thinking is False, "the request is written without thinking"
    assert script.requests[0].messages[0].content == prompts.observe_prompt("What colour is the square?", OPTIONS)
    sent = script.requests[1].messages[0].content
    assert sent == prompts.reasoning_prompt(extract.output, "What colour is the square?", OPTIONS, thinking=True)
    assert result.answer == "A" and answer.thinking == "The description says red."
    assert result.extraction_calls == 1


def test_precomputed_request_skips_observe(tiny, image_path):
    script = Script("Answer: D")
    result = agent_with(tiny, script).ask("Colour?", [image_path], OPTIONS, mode="extract",
                                          request="the background", settings=FAST)
    assert [s.purpose for s in result.steps] == ["extract", "answer"]
    assert result.steps[0].instruction.endswith("Especially, pay attention to the background.")
    assert result.answer == "D"


def test_caption_then_think(tiny, image_path):
    script = Script(think("hmm") + "Answer: B")
    result = agent_with(tiny, script).ask("Colour?", [image_path], OPTIONS, mode="caption", settings=FAST)
    caption, answer = result.steps
    assert caption.purpose == "caption" and caption.request is None
    assert caption.instruction == perception.GENERIC_INSTRUCTION
    perceiver = TransformersPerceiver(str(tiny.perceivers["llava_onevision"]), Placement(device="cpu"))
    alone = perceiver.perceive([PerceiveRequest((load_image(image_path),), caption.instruction, max_new_tokens=12)])
    assert caption.output == alone[0].text
    assert f"Description: {caption.output.strip()}\n" in script.requests[0].messages[0].content
    assert result.answer == "B"


def test_no_think_uses_the_paper_direct_post_prompt(tiny, image_path):
    script = Script("Answer: C")
    settings = AskOptions(greedy=True, thinking=False, perceiver_max_new_tokens=8)
    result = agent_with(tiny, script).ask("Colour?", [image_path], OPTIONS, mode="caption", settings=settings)
    request = script.requests[0]
    assert request.settings.thinking is False and request.settings.thinking_budget is None
    assert request.messages[0].content.endswith(prompts.POST_DIRECT_MC)
    assert result.answer == "C"


def test_several_images_are_each_described(tiny, image_path, second_image):
    script = Script("Answer: B")
    result = agent_with(tiny, script).ask("Which is blue?", [image_path, second_image], OPTIONS,
                                          mode="caption", settings=FAST)
    assert [s.image_id for s in result.steps if s.kind == "extract"] == ["image_1", "image_2"]
    assert "Image 1: " in script.requests[0].messages[0].content
    assert "Image 2: " in script.requests[0].messages[0].content


@pytest.mark.parametrize("family", FAMILIES)
def test_direct_vlm(tiny, image_path, family):
    agent = ExtractThink(reasoner=str(tiny.reasoner), perceiver=str(tiny.perceivers[family]), device="cpu")
    result = agent.ask("What colour is the square?", [image_path], OPTIONS, mode="direct", settings=FAST)
    (step,) = result.steps
    assert step.purpose == "direct" and step.instruction == prompts.direct_prompt("What colour is the square?", OPTIONS)
    assert result.final_output == step.output and result.reasoner is None
    assert result.extraction_calls == 0
    # Random weights: the answer is whatever the output says, and says so when there is none.
    assert result.answer == extract_answer(split_thinking(step.output)[1], OPTIONS).answer
