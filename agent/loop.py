"""Nodes of the iterative regime: the reasoner calls the perception tool until it can answer.

Budget rules: every tool call the reasoner makes, well-formed or not, costs one extraction from
`extractions_left`; a malformed or unknown call becomes an error message to the reasoner, never a
crash. When the budget is spent the reasoner is told so and is called without tools; if it still
calls a tool, it is refused once and asked again, and after that its output is final.
"""

from __future__ import annotations

from typing import Literal

from langgraph.runtime import Runtime

from agent import prompts
from agent.nodes import reason_record
from agent.parsing import ToolCall
from agent.state import AgentContext, AgentState
from agent.trace import ExtractStep
from tools.backends.base import Message, ReasonRequest
from tools.extract import ExtractArgs, run_extraction, validate_extract_args


def start(state: AgentState, runtime: Runtime[AgentContext]) -> dict:
    """Open the conversation: the tool-use system prompt, then the question with the images listed."""
    ctx = runtime.context
    images = [(image.id, image.width, image.height) for image in state["images"]]
    user = prompts.iterative_user_prompt(state["question"], state.get("options"), images, ctx.settings.thinking)
    return {
        "messages": [
            Message("system", prompts.ITERATIVE_SYSTEM.format(budget=ctx.max_extractions)),
            Message("user", user),
        ],
        "extractions_left": ctx.max_extractions,
        "refused_after_budget": False,
    }


def reason(state: AgentState, runtime: Runtime[AgentContext]) -> dict:
    """One reasoner turn; tools are offered only while the budget lasts."""
    ctx = runtime.context
    left = state.get("extractions_left", 0)
    tools = (prompts.extract_tool_schema([image.id for image in state["images"]]),) if left > 0 else ()
    request = ReasonRequest(messages=tuple(state["messages"]), settings=ctx.settings, tools=tools)
    out = ctx.reasoner.reason([request])[0]
    # Malformed blocks stay in the history as written, so the error message that follows makes sense.
    broken = "".join(f"\n<tool_call>\n{e.raw}\n</tool_call>" for e in out.tool_errors)
    message = Message("assistant", (out.text + broken).strip(), tuple(out.tool_calls), reasoning=out.thinking)
    return {
        "messages": [message],
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


def extract(state: AgentState, runtime: Runtime[AgentContext]) -> dict:
    """Answer every pending tool call with a tool message: a description, or an error to correct."""
    ctx = runtime.context
    left = state.get("extractions_left", 0)
    spent_before = left == 0
    replies: list[Message] = []
    steps: list[ExtractStep] = []
    for error in state.get("pending_errors", []):
        replies.append(Message("tool", _error_reply(error.error) if left > 0 else prompts.BUDGET_SPENT))
        left = max(left - 1, 0)
    for call in state.get("pending_calls", []):
        if left == 0:
            replies.append(Message("tool", prompts.BUDGET_SPENT, tool_call_id=call.id))
            continue
        left -= 1
        reply, step = _run_call(call, state, ctx)
        replies.append(Message("tool", reply, tool_call_id=call.id))
        steps.append(step)
    if left == 0 and not spent_before and replies:
        last = replies[-1]
        replies[-1] = Message("tool", f"{last.content}\n\n{prompts.BUDGET_SPENT}", tool_call_id=last.tool_call_id)
    return {
        "messages": replies,
        "steps": steps,
        "extractions_left": left,
        "pending_calls": [],
        "pending_errors": [],
        "refused_after_budget": spent_before or state.get("refused_after_budget", False),
    }


def _run_call(call: ToolCall, state: AgentState, ctx: AgentContext) -> tuple[str, ExtractStep]:
    image_ids = [image.id for image in state["images"]]
    if call.name != "extract":
        error = f"unknown tool '{call.name}'; the only tool is 'extract'"
        return _error_reply(error), ExtractStep(request=None, error=error)
    args = validate_extract_args(call.arguments, image_ids)
    if not isinstance(args, ExtractArgs):
        return _error_reply(args), ExtractStep(request=str(call.arguments.get("request", "")) or None, error=args)
    step = run_extraction(
        ctx.perceiver,
        ctx.store,
        args.image or image_ids[0],
        args.request,
        region=args.region,
        max_new_tokens=ctx.perceiver_max_new_tokens,
    )
    return step.output, step


def _error_reply(error: str) -> str:
    return (
        f"Error: {error}. Call extract again with a JSON object such as "
        '{"name": "extract", "arguments": {"request": "the text on the sign"}}, or answer.'
    )
