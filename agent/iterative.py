"""Nodes of the iterative regime: the reasoner calls the perception tool until it can answer.

Budget rules: every tool call the reasoner makes, well-formed or not, costs one extraction from
`extractions_left`. When a turn asks for more calls than are left, the valid calls are charged first
(in written order), then the malformed ones; replies always come back in written order, so a broken
call written first never takes the place of a valid one. A malformed or failing call becomes an error
message to the reasoner, never a crash. When the budget is spent the reasoner is told so once and is
called without tools (and without the system prompt that offers them); if it still calls a tool, it
is refused once and asked again, and after that its output is final.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from langgraph.runtime import Runtime

from agent import prompts, review
from agent.context import live_context
from agent.token_stream import token_relay
from agent.single_pass import reason_record
from tools.backends.output_parsing import ToolCall, ToolCallError
from agent.state import AgentContext, AgentState
from agent.trace import ExtractStep
from tools.backends.base import Message, ReasonRequest
from agent.extract_tool import CropInfo, ExtractArgs, Target, extract_safely, resolve_target, validate_extract_args


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
    left = state.get("extractions_left", 0)
    messages = list(state["history"])
    if left > 0:
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


def route_after_reason(state: AgentState) -> Literal["extract", "__end__"]:
    """Run the tools the reasoner called; after the budget, refuse once, then stop."""
    if not state.get("pending_calls") and not state.get("pending_errors"):
        return "__end__"
    if state.get("extractions_left", 0) > 0 or not state.get("refused_after_budget"):
        return "extract"
    return "__end__"


@dataclass
class _Checked:
    """One written tool call after validation: a target to extract from, or the error to reply."""

    call: ToolCall | None
    args: ExtractArgs | None = None
    target: Target | None = None
    error: str | None = None
    review: str | None = None  # interrupt_before_extract: approved, edited or refused
    refusal: str | None = None  # the application's reason, when refused


def extract(state: AgentState, runtime: Runtime[AgentContext]) -> dict:
    """Answer every pending tool call with a tool message: a description, or an error to correct."""
    ctx = live_context(runtime, state)
    left = state.get("extractions_left", 0)
    spent_before = left == 0
    images = {image.id: (image.width, image.height) for image in state["images"]}
    known_crops = {crop.id: crop for crop in state.get("crops", [])}
    checked = [_check(call, images, known_crops) for call in _written_order(state)]
    charged = _charge(checked, left)
    if state.get("review_extractions", ctx.interrupt_before_extract):  # fixed for the turn, resumed or not
        checked = [_reviewed(item, images, known_crops, left) if i in charged and item.error is None else item
                   for i, item in enumerate(checked)]  # fmt: skip
    crops = list(state.get("crops", []))
    new_crops: list[CropInfo] = []
    replies: list[Message] = []
    steps: list[ExtractStep] = []
    for i, item in enumerate(checked):
        call_id = item.call.id if item.call else None
        if i not in charged:
            replies.append(Message("tool", prompts.NOT_RUN, tool_call_id=call_id))
            continue
        if item.error is not None:
            replies.append(Message("tool", prompts.tool_error(item.error), tool_call_id=call_id))
            if item.call is not None:  # parse errors are already in the reasoner's step
                steps.append(ExtractStep(request=_request_text(item.call), error=item.error))
            continue
        if item.refusal is not None:
            replies.append(Message("tool", prompts.refused(item.refusal), tool_call_id=call_id))
            steps.append(ExtractStep(request=item.args.request, error="refused by the application", review="refused"))
            continue
        step = extract_safely(ctx.perceiver, ctx.store, item.target, item.args.request,
                              max_new_tokens=ctx.perceiver_max_new_tokens)  # fmt: skip
        step = step.model_copy(update={"review": item.review}) if item.review else step
        reply = prompts.tool_error(step.error) if step.error else step.output
        if step.error is None and step.region is not None:
            crop = _register_crop(step, state, len(crops) + len(new_crops) + 1)
            new_crops.append(crop)
            step = step.model_copy(update={"crop_id": crop.id})
            reply = prompts.zoom_note(crop.id, step.image_id, step.region, step.repairs) + "\n" + reply
        if item.review == "edited":
            reply = prompts.edited_note(item.args.request) + "\n" + reply
        replies.append(Message("tool", reply, tool_call_id=call_id))
        steps.append(step)
    left -= len(charged)
    if replies and left == 0:
        last = replies[-1]
        replies[-1] = Message("tool", f"{last.content}\n\n{prompts.BUDGET_SPENT}", tool_call_id=last.tool_call_id)
    return {
        "history": replies,
        "steps": steps,
        "crops": new_crops,
        "extractions_left": left,
        "pending_calls": [],
        "pending_errors": [],
        "refused_after_budget": spent_before or state.get("refused_after_budget", False),
    }


def _written_order(state: AgentState) -> list[ToolCall | ToolCallError]:
    """The turn's calls and malformed blocks in the order the reasoner wrote them."""
    calls = list(state.get("pending_calls", [])) + list(state.get("pending_errors", []))
    return sorted(calls, key=_position)


def _position(item: ToolCall | ToolCallError) -> int:
    return item.index

def _check(item: ToolCall | ToolCallError, images: dict[str, tuple[int, int]], crops: dict[str, CropInfo]) -> _Checked:
    if isinstance(item, ToolCallError):
        return _Checked(call=None, error=item.error)
    if item.name != "extract":
        return _Checked(call=item, error=f"unknown tool '{item.name[:60]}'; the only tool is 'extract'")
    args = validate_extract_args(item.arguments, [*images, *crops])
    if not isinstance(args, ExtractArgs):
        return _Checked(call=item, error=args)
    target = resolve_target(args, images, crops)
    if isinstance(target, str):
        return _Checked(call=item, args=args, error=target)
    return _Checked(call=item, args=args, target=target)


def _reviewed(item: _Checked, images, crops, left: int) -> _Checked:
    """Ask the application about one call; an edited call is checked again like a written one."""
    decision = review.ask(item.call, left)
    if decision.action == "refuse":
        return _Checked(call=item.call, args=item.args, review="refused", refusal=decision.reason)
    if decision.action == "approve":
        return _Checked(call=item.call, args=item.args, target=item.target, review="approved")
    edited = ToolCall(id=item.call.id, name=item.call.name, arguments=decision.arguments, index=item.call.index)
    checked = _check(edited, images, crops)
    checked.review = "edited"
    return checked


def _charge(checked: list[_Checked], left: int) -> set[int]:
    """Indices of the calls the budget pays for: valid calls first, then malformed ones."""
    order = [i for i, c in enumerate(checked) if c.error is None] + [i for i, c in enumerate(checked) if c.error]
    return set(order[: max(left, 0)])


def _register_crop(step: ExtractStep, state: AgentState, number: int) -> CropInfo:
    """The crop of a region call, nameable later as `crop_<number>`; its size is in original pixels."""
    width, height = next((i.width, i.height) for i in state["images"] if i.id == step.source_image)
    x0, y0, x1, y1 = step.source_region
    return CropInfo(id=f"crop_{number}", source_image=step.source_image, box=list(step.source_region),
                    width=max(1, round((x1 - x0) * width)), height=max(1, round((y1 - y0) * height)))


MAX_TRACE_REQUEST = 500  # a refused call's request is kept in the trace up to this length


def _request_text(call: ToolCall) -> str | None:
    request = call.arguments.get("request") if isinstance(call.arguments, dict) else None
    return request[:MAX_TRACE_REQUEST] if isinstance(request, str) and request.strip() else None

