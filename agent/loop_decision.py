"""The iterative loop's decision: what a reasoner turn means (an answer, tool calls to run, or the end once
the extraction budget is spent), and what the budget pays for.

Budget rules: every tool call the reasoner makes, well-formed or not, costs one extraction from
`extractions_left`. When a turn asks for more calls than are left, the valid calls are charged first
(in written order), then the malformed ones; replies always come back in written order, so a broken
call written first never takes the place of a valid one. A malformed or failing call becomes an error
message to the reasoner, never a crash. When the budget is spent the reasoner is told so once and is
called without tools (and without the system prompt that offers them); if it still calls a tool, it
is refused once and asked again, and after that its output is final.
"""

from __future__ import annotations

from typing import Literal

from agent import prompts
from agent.state import AgentState
from tools.backends.base import Message
from tools.backends.output_parsing import ToolCall, ToolCallError


def offers_tools(state: AgentState) -> bool:
    """The reasoner is offered the extract tool (and the system prompt about it) while the budget lasts."""
    return state.get("extractions_left", 0) > 0


def route_after_reason(state: AgentState) -> Literal["extract", "__end__"]:
    """No tool call is the answer; tool calls run while the budget lasts; after it, refuse once, then stop."""
    if not state.get("pending_calls") and not state.get("pending_errors"):
        return "__end__"
    if state.get("extractions_left", 0) > 0 or not state.get("refused_after_budget"):
        return "extract"
    return "__end__"


def written_order(state: AgentState) -> list[ToolCall | ToolCallError]:
    """The turn's calls and malformed blocks in the order the reasoner wrote them."""
    calls = list(state.get("pending_calls", [])) + list(state.get("pending_errors", []))
    return sorted(calls, key=_position)


def _position(item: ToolCall | ToolCallError) -> int:
    return item.index


def charged(valid: list[bool], left: int) -> set[int]:
    """Indices of the calls (in written order) the budget pays for: valid calls first, then malformed ones."""
    order = [i for i, ok in enumerate(valid) if ok] + [i for i, ok in enumerate(valid) if not ok]
    return set(order[: max(left, 0)])


def with_budget_note(replies: list[Message], left: int) -> list[Message]:
    """The turn's tool replies; the last one tells the reasoner when this turn spent the budget."""
    if not replies or left != 0:
        return replies
    last = replies[-1]
    return [*replies[:-1], Message("tool", f"{last.content}\n\n{prompts.BUDGET_SPENT}", tool_call_id=last.tool_call_id)]


def refused_after_budget(state: AgentState) -> bool:
    """Whether the reasoner has had its one refusal: calls that arrive with the budget already spent."""
    return state.get("extractions_left", 0) == 0 or state.get("refused_after_budget", False)
