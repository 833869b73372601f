"""The iterative regime: reasoner <-> extract until the reasoner answers (this project's extension).

`graph` is compiled at import (cheap, no models touched) so LangGraph tooling can list it. Its context is
JSON (agent/settings.py: RunContext) or, from Python, a live AgentContext.
"""

from __future__ import annotations

from langgraph.graph import END, START, StateGraph

from agent import iterative as loop
from agent import loop_decision
from agent.inputs import RegimeInput, check_input
from agent.settings import RunContext
from agent.state import AgentState


def build() -> StateGraph:
    builder = StateGraph(AgentState, context_schema=RunContext, input_schema=RegimeInput)
    builder.add_node("check_input", check_input)
    builder.add_node("start", loop.start)
    builder.add_node("reason", loop.reason)
    builder.add_node("extract", loop.extract)
    builder.add_edge(START, "check_input")
    builder.add_edge("check_input", "start")
    builder.add_edge("start", "reason")
    builder.add_conditional_edges("reason", loop_decision.route_after_reason, {"extract": "extract", "__end__": END})
    builder.add_edge("extract", "reason")
    return builder


def recursion_limit(max_extractions: int) -> int:
    """Supersteps the loop can need: check_input, start, then (reason, extract) per call, one refusal, the last
    reason."""
    return 2 * (max_extractions + 2) + 5


graph = build().compile()
