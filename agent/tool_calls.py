"""A reasoner's written tool calls checked one by one: each becomes a target to extract from, or the error
the reasoner gets back to correct. With `interrupt_before_extract` the application reviews each checked call
first (agent/review.py), and an edited call is checked again like a written one.
"""

from __future__ import annotations

from dataclasses import dataclass

from agent import review
from agent.extract_tool import CropInfo, ExtractArgs, Target, resolve_target, validate_extract_args
from tools.backends.output_parsing import ToolCall, ToolCallError

MAX_TRACE_REQUEST = 500  # a refused call's request is kept in the trace up to this length


@dataclass
class CheckedCall:
    """One written tool call after validation: a target to extract from, or the error to reply."""

    call: ToolCall | None
    args: ExtractArgs | None = None
    target: Target | None = None
    error: str | None = None
    review: str | None = None  # interrupt_before_extract: approved, edited or refused
    refusal: str | None = None  # the application's reason, when refused


def check_call(item: ToolCall | ToolCallError, images: dict[str, tuple[int, int]],
               crops: dict[str, CropInfo]) -> CheckedCall:  # fmt: skip
    if isinstance(item, ToolCallError):
        return CheckedCall(call=None, error=item.error)
    if item.name != "extract":
        return CheckedCall(call=item, error=f"unknown tool '{item.name[:60]}'; the only tool is 'extract'")
    args = validate_extract_args(item.arguments, [*images, *crops])
    if not isinstance(args, ExtractArgs):
        return CheckedCall(call=item, error=args)
    target = resolve_target(args, images, crops)
    if isinstance(target, str):
        return CheckedCall(call=item, args=args, error=target)
    return CheckedCall(call=item, args=args, target=target)


def reviewed(item: CheckedCall, images, crops, left: int) -> CheckedCall:
    """Ask the application about one call; an edited call is checked again like a written one."""
    decision = review.ask(item.call, left)
    if decision.action == "refuse":
        return CheckedCall(call=item.call, args=item.args, review="refused", refusal=decision.reason)
    if decision.action == "approve":
        return CheckedCall(call=item.call, args=item.args, target=item.target, review="approved")
    edited = ToolCall(id=item.call.id, name=item.call.name, arguments=decision.arguments, index=item.call.index)
    checked = check_call(edited, images, crops)
    checked.review = "edited"
    return checked


def request_text(call: ToolCall) -> str | None:
    """The call's request as the trace keeps it (cut to MAX_TRACE_REQUEST), or None when it has none."""
    request = call.arguments.get("request") if isinstance(call.arguments, dict) else None
    return request[:MAX_TRACE_REQUEST] if isinstance(request, str) and request.strip() else None
