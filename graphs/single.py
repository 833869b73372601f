"""The single-pass regimes of the paper: Extract+Think, Caption+Think, and the end-to-end VLM.

- `extract_graph`: the reasoner writes the "contents to observe" request (skipped when the caller
  passes one), one extraction with it, then the reasoner thinks and answers.
- `caption_graph`: one extraction with the generic instruction, then think and answer.
- `direct_graph`: the VLM answers the question itself.
"""

from __future__ import annotations

from langgraph.graph import END, START, StateGraph

from agent import single_pass
from agent.inputs import RegimeInput, check_input
from agent.settings import RunContext
from agent.state import AgentState


def _builder() -> StateGraph:
    """A graph that first checks its input (agent/inputs.py), with a JSON context."""
    builder = StateGraph(AgentState, context_schema=RunContext, input_schema=RegimeInput)
    builder.add_node("check_input", check_input)
    builder.add_edge(START, "check_input")
    return builder


def build_extract() -> StateGraph:
    builder = _builder()
    builder.add_node("observe", single_pass.observe)
    builder.add_node("perceive", single_pass.perceive)
    builder.add_node("think", single_pass.think)
    builder.add_conditional_edges("check_input", single_pass.route_start, {"observe": "observe", "perceive": "perceive"})
    builder.add_edge("observe", "perceive")
    builder.add_edge("perceive", "think")
    builder.add_edge("think", END)
    return builder


def build_caption() -> StateGraph:
    builder = _builder()
    builder.add_node("perceive", single_pass.perceive)
    builder.add_node("think", single_pass.think)
    builder.add_edge("check_input", "perceive")
    builder.add_edge("perceive", "think")
    builder.add_edge("think", END)
    return builder


def build_direct() -> StateGraph:
    builder = _builder()
    builder.add_node("direct", single_pass.direct)
    builder.add_edge("check_input", "direct")
    builder.add_edge("direct", END)
    return builder


SINGLE_PASS_RECURSION_LIMIT = 11

extract_graph = build_extract().compile()
caption_graph = build_caption().compile()
direct_graph = build_direct().compile()
