"""Pause before looking: the application approves, edits or refuses each extraction the reasoner asks for.

With `interrupt_before_extract` the iterative regime calls LangGraph's `interrupt` once per extraction
it is about to run, with the proposed request, image and region. The application resumes with
`Command(resume=...)`:
- `True`, `"approve"` or `{"action": "approve"}`: run it as proposed;
- `{"action": "edit", "request": ..., "image": ..., "region": ...}`: run the edited call (keys left out
  keep the proposed values); the trace records the edited request;
- `False`, `"refuse"` or `{"action": "refuse", "reason": ...}`: do not run it; the reasoner gets a tool
  message saying so (the call still counts against the budget, like every call).
All decisions of a turn are asked for before any extraction runs: LangGraph re-runs the node on each
resume, and asking first keeps a resumed node from repeating perceiver calls.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from langgraph.types import interrupt

from tools.backends.output_parsing import ToolCall
from agent.settings import InputError

ACTIONS = ("approve", "edit", "refuse")


@dataclass(frozen=True)
class Decision:
    action: str
    arguments: dict | None = None  # the call's arguments after an edit
    reason: str = ""


def ask(call: ToolCall, extractions_left: int) -> Decision:
    """Pause the run with the proposed call; return the application's decision when it resumes."""
    proposal = {"kind": "extract", "tool_call_id": call.id, "extractions_left": extractions_left,
                "request": call.arguments.get("request"), "image": call.arguments.get("image"),
                "region": call.arguments.get("region"), "actions": list(ACTIONS)}  # fmt: skip
    return read_decision(interrupt(proposal), call.arguments)


def read_decision(value: Any, proposed: dict) -> Decision:
    """The resume value as a Decision; a value that is none of the documented forms is an input error."""
    if value is True or value == "approve":
        return Decision("approve")
    if value is False or value == "refuse":
        return Decision("refuse")
    if not isinstance(value, dict) or value.get("action") not in ACTIONS:
        raise InputError("resume an extraction with True/'approve', False/'refuse', or {'action': 'approve' | "
                         "'edit' | 'refuse', ...}")  # fmt: skip
    action = value["action"]
    if action == "edit":
        edits = {k: value[k] for k in ("request", "image", "region") if k in value}
        return Decision("edit", {**proposed, **edits})
    return Decision(action, reason=str(value.get("reason") or "")[:300])
