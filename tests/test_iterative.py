"""The iterative regime end to end: real generate calls (reasoner forced by script), real perceiver."""

from __future__ import annotations

import pytest

from agent import prompts
from tools import perception
from graphs.api import AskOptions, ExtractThink
from tools.tiny.forced import Script, think, tool_call
from tools.backends.base import PerceiveRequest
from tools.backends.hf_perceiver import TransformersPerceiver
from tools.backends.hf_reasoner import TransformersReasoner
from tools.backends.loading import Placement
from tools.images.pixels import crop_region, load_image
from tools.tiny.models import PERCEIVER_BUILDERS

OPTIONS = ["red", "blue"]
FAMILIES = list(PERCEIVER_BUILDERS)  # every family the docs name as a perceiver
FAST = dict(greedy=True, perceiver_max_new_tokens=12)


def agent_with(tiny, script: Script, family: str = "llava_onevision") -> ExtractThink:
    reasoner = TransformersReasoner(str(tiny.reasoner), extra_logits_processors=script)
    return ExtractThink(reasoner=reasoner, perceiver=str(tiny.perceivers[family]), device="cpu")


def tool_messages(request):
    return [m for m in request.messages if m.role == "tool"]


@pytest.mark.parametrize("family", FAMILIES)
def test_two_extractions_then_answer(tiny, image_path, family):
    script = Script(
        think("I need the colour.") + tool_call("the colour of the square"),
        think("Now zoom in.") + tool_call("the square's edge", region=[0.0, 0.0, 0.5, 0.75]),
        think("It is red.") + "The square is red.\nAnswer: A",
    )
    result = agent_with(tiny, script, family).ask(
        "What colour is the square?", [image_path], OPTIONS, mode="iterative", settings=AskOptions(**FAST)
    )
    assert [s.kind for s in result.steps] == ["reason", "extract", "reason", "extract", "reason"]
    assert result.answer == "A" and result.answer_found
    assert result.extraction_calls == 2
    first, second = result.steps[1], result.steps[3]
    assert first.instruction == perception.extraction_instruction("the colour of the square")
    assert first.instruction.endswith("Especially, pay attention to the colour of the square.")
    assert second.region == [0.0, 0.0, 0.5, 0.75] and second.image_id == "image_1"
    # What the perceiver said is exactly what the reasoner is shown next.
    assert [m.content for m in tool_messages(script.requests[1])] == [first.output]
    zoom = prompts.zoom_note("crop_1", "image_1", [0.0, 0.0, 0.5, 0.75], [])
    assert [m.content for m in tool_messages(script.requests[2])] == [first.output, zoom + "\n" + second.output]
    assert second.crop_id == "crop_1" and second.source_region == second.region
    # The thinking of the current turn is kept in history, as Qwen3's template expects.
    assert script.requests[1].messages[2].reasoning == "I need the colour."
    assert result.steps[0].thinking == "I need the colour." and result.steps[0].tool_calls[0].name == "extract"
    # Each turn reuses the keys/values of the conversation so far: it only computes what was added.
    reasons = [s for s in result.steps if s.kind == "reason"]
    for before, after in zip(reasons, reasons[1:]):
        assert after.cached_tokens >= before.prompt_tokens + before.output_tokens - 8


def test_region_reaches_the_perceiver_as_a_crop(tiny, image_path):
    box = [0.5, 0.0, 1.0, 1.0]
    script = Script(tool_call("the right half", region=box), "Answer: B")
    result = agent_with(tiny, script).ask("Colour?", [image_path], OPTIONS, settings=AskOptions(**FAST))
    step = result.steps[1]
    perceiver = TransformersPerceiver(str(tiny.perceivers["llava_onevision"]), Placement(device="cpu"))
    crop = crop_region(load_image(image_path), tuple(box))
    whole = load_image(image_path)
    direct = [
        perceiver.perceive([PerceiveRequest(images=(img,), instruction=step.instruction, max_new_tokens=12)])[0].text
        for img in (crop, whole)
    ]
    assert step.output == direct[0]
    assert direct[0] != direct[1], "the tiny perceiver should tell the crop from the whole image"


def test_malformed_tool_call_is_recovered(tiny, image_path):
    script = Script(
        "<tool_call>\n{\"name\": \"extract\", \"arguments\": {\"request\": \n</tool_call>",
        tool_call("the colour"),
        "Answer: B",
    )
    result = agent_with(tiny, script).ask(
        "Colour?", [image_path], OPTIONS, settings=AskOptions(max_extractions=3, **FAST)
    )
    assert [s.kind for s in result.steps] == ["reason", "reason", "extract", "reason"]
    assert "not valid JSON" in result.steps[0].tool_errors[0]
    error_reply = tool_messages(script.requests[1])[0].content
    assert error_reply.startswith("Error: the tool call is not valid JSON")
    assert "<tool_call>" in script.requests[1].messages[2].content, "the broken call stays in history"
    assert result.answer == "B" and result.extraction_calls == 1


def test_unknown_tool_and_bad_arguments_become_errors(tiny, image_path):
    script = Script(
        '<tool_call>\n{"name": "zoom", "arguments": {"box": [0, 0, 1, 1]}}\n</tool_call>',
        tool_call("the corner", region=[0.2, 0.2, 1.5, 0.9]),
        tool_call("the corner", image="image_9"),
        "Answer: A",
    )
    result = agent_with(tiny, script).ask(
        "Colour?", [image_path], OPTIONS, settings=AskOptions(max_extractions=4, **FAST)
    )
    replies = [tool_messages(r)[-1].content for r in script.requests[1:]]
    assert "unknown tool 'zoom'" in replies[0]
    assert "region" in replies[1] and "between 0 and 1" in replies[1]
    assert "unknown image 'image_9'" in replies[2]
    assert result.extraction_calls == 0 and result.answer == "A"
    assert [s.error is not None for s in result.steps if s.kind == "extract"] == [True, True, True]


def test_budget_exhausted_then_answered(tiny, image_path):
    script = Script(tool_call("one"), tool_call("two"), "Answer: B")
    result = agent_with(tiny, script).ask(
        "Colour?", [image_path], OPTIONS, settings=AskOptions(max_extractions=2, **FAST)
    )
    assert result.extraction_calls == 2 and result.answer == "B"
    assert [bool(r.tools) for r in script.requests] == [True, True, False], "no tools once the budget is spent"
    assert tool_messages(script.requests[2])[-1].content.endswith(prompts.BUDGET_SPENT)


def test_calls_after_the_budget_are_refused_once_then_the_run_ends(tiny, image_path):
    script = Script(tool_call("one"), tool_call("again"), tool_call("and again"))
    result = agent_with(tiny, script).ask(
        "Colour?", [image_path], OPTIONS, settings=AskOptions(max_extractions=1, **FAST)
    )
    assert len(script.requests) == 3 and not script.texts
    refusal = tool_messages(script.requests[2])[-1].content
    assert refusal == prompts.NOT_RUN + "\n\n" + prompts.BUDGET_SPENT
    assert result.extraction_calls == 1 and result.budget_spent
    assert result.answer is None and not result.answer_found


def test_zero_budget_offers_no_tool(tiny, image_path):
    script = Script("Answer: A")
    result = agent_with(tiny, script).ask(
        "Colour?", [image_path], OPTIONS, settings=AskOptions(max_extractions=0, **FAST)
    )
    assert script.requests[0].tools == () and result.answer == "A"


def test_second_image_by_id(tiny, image_path, second_image):
    script = Script(tool_call("the colour", image="image_2"), "Answer: B")
    result = agent_with(tiny, script).ask(
        "Which image is blue?", [image_path, second_image], OPTIONS, settings=AskOptions(**FAST)
    )
    assert result.steps[1].image_id == "image_2"
    assert "image_1 (120x80), image_2 (64x96)" in script.requests[0].messages[1].content


def test_open_question_answer_is_kept_as_text(tiny, image_path):
    script = Script("It is a red square.\nAnswer: a red square")
    result = agent_with(tiny, script).ask("What is drawn?", [image_path], None, settings=AskOptions(**FAST))
    assert result.answer == "a red square" and result.options == []
    assert "letter" not in script.requests[0].messages[1].content
