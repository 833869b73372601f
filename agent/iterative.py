"""Nodes of the iterative regime: the reasoner calls the perception tool until it can answer.

What each reasoner turn means for the loop, and the budget rules, are in agent/loop_decision.py; how a written
call is checked (and reviewed) is in agent/tool_calls.py. These nodes run the turns and the extractions.
"""

from __future__ import annotations

from dataclasses import dataclass

from langgraph.runtime import Runtime

from agent import loop_decision, prompts
from agent.context import live_context
from agent.extract_tool import CropInfo, Target, extract_safely
from agent.single_pass import reason_record
from agent.state import AgentContext, AgentState
from agent.token_stream import token_relay
from agent.tool_calls import CheckedCall, check_call, request_text, reviewed
from agent.trace import ExtractStep
from tools.backends.base import Message, ReasonRequest


def start(state: AgentState, runtime: Runtime[AgentContext]) -> dict:
    """Open the conversation: the tool-use system prompt, then the question with the images listed
    (and a generic first look at each image when the context asks for one). In a conversation that already
    has a history, the new question (and any new images) is appended instead: earlier extractions stay."""
    ctx = live_context(runtime, state)
    budget = {"extractions_left": ctx.max_extractions, "refused_after_budget": False,
              "seen_images": [image.id for image in state["images"]],
              "review_extractions": ctx.interrupt_before_extract}  # fmt: skip
    if state.get("history"):
        seen = set(state.get("seen_images") or [])
        new = [(image.id, image.width, image.height) for image in state["images"] if image.id not in seen]
        user = prompts.followup_user_prompt(state["question"], state.get("options"), new, ctx.settings.thinking,
                                            ctx.max_extractions)  # fmt: skip
        return {"history": [Message("user", user)], "steps": [], **budget}
    images = [(image.id, image.width, image.height) for image in state["images"]]
    steps = _first_look(state, ctx) if ctx.first_look == "caption" else []
    looks = {s.image_id: s.output for s in steps if s.error is None}
    user = prompts.iterative_user_prompt(state["question"], state.get("options"), images, ctx.settings.thinking,
                                         first_look=looks or None)  # fmt: skip
    return {
        "history": [
            Message("system", prompts.ITERATIVE_SYSTEM.format(budget=ctx.max_extractions)),
            Message("user", user),
        ],
        "steps": steps,
        **budget,
    }


def _first_look(state: AgentState, ctx: AgentContext) -> list[ExtractStep]:
    return [
        extract_safely(ctx.perceiver, ctx.store, Target(image.id, image.id), None, purpose="look",
                       max_new_tokens=ctx.perceiver_max_new_tokens)  # fmt: skip
        for image in state["images"]
    ]


def reason(state: AgentState, runtime: Runtime[AgentContext]) -> dict:
    """One reasoner turn; tools (and the system prompt offering them) only while the budget lasts."""
    ctx = live_context(runtime, state)
    messages = list(state["history"])
    if loop_decision.offers_tools(state):
        tools = (prompts.extract_tool_schema([image.id for image in state["images"]]),)
    else:
        tools = ()
        messages[0] = Message("system", prompts.ITERATIVE_FINAL_SYSTEM)
    request = ReasonRequest(messages=tuple(messages), settings=ctx.settings, tools=tools,
                            on_text=token_relay("reason", ctx.settings.thinking) if ctx.stream_text else None)
    out = ctx.reasoner.reason([request])[0]
    # Malformed blocks stay in the history as written, so the error message that follows makes sense.
    broken = "".join(f"\n<tool_call>\n{e.raw}\n</tool_call>" for e in out.tool_errors)
    message = Message("assistant", (out.text + broken).strip(), tuple(out.tool_calls), reasoning=out.thinking)
    return {
        "history": [message],
        "steps": [reason_record(out, "iterate")],
        "pending_calls": out.tool_calls,
        "pending_errors": out.tool_errors,
        "final_output": out.raw,
        "final_text": out.text,
    }


@dataclass
class _Reply:
    """What one tool call gets: its tool message, and the trace step and the crop it made, if any."""

    message: Message
    step: ExtractStep | None = None
    crop: CropInfo | None = None


def extract(state: AgentState, runtime: Runtime[AgentContext]) -> dict:
    """Answer every pending tool call with a tool message: a description, or an error to correct."""
    ctx = live_context(runtime, state)
    left = state.get("extractions_left", 0)
    checked, charged = _checked_turn(state, ctx, left)
    replies: list[_Reply] = []
    for i, item in enumerate(checked):
        crop_number = len(state.get("crops", [])) + sum(r.crop is not None for r in replies) + 1
        replies.append(_reply(item, state, ctx, crop_number) if i in charged else _not_run(item))
    left -= len(charged)
    return {
        "history": loop_decision.with_budget_note([r.message for r in replies], left),
        "steps": [r.step for r in replies if r.step is not None],
        "crops": [r.crop for r in replies if r.crop is not None],
        "extractions_left": left,
        "pending_calls": [],
        "pending_errors": [],
        "refused_after_budget": loop_decision.refused_after_budget(state),
    }


def _checked_turn(state: AgentState, ctx: AgentContext, left: int) -> tuple[list[CheckedCall], set[int]]:
    """The turn's calls in written order, checked (and reviewed when the run asks), and which ones the budget
    pays for. Review asks only about charged valid calls, and all of them before any extraction runs."""
    images = {image.id: (image.width, image.height) for image in state["images"]}
    known_crops = {crop.id: crop for crop in state.get("crops", [])}
    checked = [check_call(call, images, known_crops) for call in loop_decision.written_order(state)]
    charged = loop_decision.charged([item.error is None for item in checked], left)
    if state.get("review_extractions", ctx.interrupt_before_extract):  # fixed for the turn, resumed or not
        checked = [reviewed(item, images, known_crops, left) if i in charged and item.error is None else item
                   for i, item in enumerate(checked)]  # fmt: skip
    return checked, charged


def _not_run(item: CheckedCall) -> _Reply:
    return _Reply(Message("tool", prompts.NOT_RUN, tool_call_id=_call_id(item)))


def _reply(item: CheckedCall, state: AgentState, ctx: AgentContext, crop_number: int) -> _Reply:
    """A charged call's answer: its error, the application's refusal, or the extraction it asked for."""
    if item.error is not None:
        # Parse errors (no call) are already in the reasoner's step.
        step = ExtractStep(request=request_text(item.call), error=item.error) if item.call is not None else None
        return _Reply(Message("tool", prompts.tool_error(item.error), tool_call_id=_call_id(item)), step)
    if item.refusal is not None:
        step = ExtractStep(request=item.args.request, error="refused by the application", review="refused")
        return _Reply(Message("tool", prompts.refused(item.refusal), tool_call_id=_call_id(item)), step)
    return _extracted(item, state, ctx, crop_number)


def _extracted(item: CheckedCall, state: AgentState, ctx: AgentContext, crop_number: int) -> _Reply:
    """Run the extraction; a region call also registers its crop, and the reply says how to name it."""
    step = extract_safely(ctx.perceiver, ctx.store, item.target, item.args.request,
                          max_new_tokens=ctx.perceiver_max_new_tokens)  # fmt: skip
    step = step.model_copy(update={"review": item.review}) if item.review else step
    reply = prompts.tool_error(step.error) if step.error else step.output
    crop = None
    if step.error is None and step.region is not None:
        crop = _register_crop(step, state, crop_number)
        step = step.model_copy(update={"crop_id": crop.id})
        reply = prompts.zoom_note(crop.id, step.image_id, step.region, step.repairs) + "\n" + reply
    if item.review == "edited":
        reply = prompts.edited_note(item.args.request) + "\n" + reply
    return _Reply(Message("tool", reply, tool_call_id=_call_id(item)), step, crop)


def _call_id(item: CheckedCall) -> str | None:
    return item.call.id if item.call else None


def _register_crop(step: ExtractStep, state: AgentState, number: int) -> CropInfo:
    """The crop of a region call, nameable later as `crop_<number>`; its size is in original pixels."""
    width, height = next((i.width, i.height) for i in state["images"] if i.id == step.source_image)
    x0, y0, x1, y1 = step.source_region
    return CropInfo(id=f"crop_{number}", source_image=step.source_image, box=list(step.source_region),
                    width=max(1, round((x1 - x0) * width)), height=max(1, round((y1 - y0) * height)))
