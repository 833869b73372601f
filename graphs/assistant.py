"""The `assistant` graph: a conversation over images, one regime run per user turn.

ingest -> (iterative: start -> reason <-> extract | extract: observe -> perceive -> think |
caption: perceive -> think | direct: direct) -> respond. Input: `{"messages": [...]}` in the LangChain /
OpenAI chat format (agent/assistant_turns.py); output: `messages` ending with the AI answer, and `result`, the turn's
Result JSON. With a checkpointer (LangGraph Server always has one) a thread is a conversation: the
iterative reasoner keeps its history, so a follow-up reuses what it already saw.
"""

from __future__ import annotations

from langgraph.graph import END, START, StateGraph

from agent import assistant_turns, iterative, loop_decision, single_pass
from agent.settings import RunContext


def build() -> StateGraph:
    builder = StateGraph(assistant_turns.ChatState, context_schema=RunContext, input_schema=assistant_turns.ChatInput,
                         output_schema=assistant_turns.ChatOutput)  # fmt: skip
    for name, node in [("ingest", assistant_turns.ingest), ("start", iterative.start), ("reason", iterative.reason),
                       ("extract", iterative.extract), ("observe", single_pass.observe), ("perceive", single_pass.perceive),
                       ("think", single_pass.think), ("direct", single_pass.direct), ("respond", assistant_turns.respond)]:  # fmt: skip
        builder.add_node(name, node)
    builder.add_edge(START, "ingest")
    builder.add_conditional_edges("ingest", assistant_turns.route_turn, ["start", "observe", "perceive", "direct", END])
    builder.add_edge("start", "reason")
    builder.add_conditional_edges("reason", loop_decision.route_after_reason,
                                  {"extract": "extract", "__end__": "respond"})  # fmt: skip
    builder.add_edge("extract", "reason")
    builder.add_edge("observe", "perceive")
    builder.add_edge("perceive", "think")
    builder.add_edge("think", "respond")
    builder.add_edge("direct", "respond")
    builder.add_edge("respond", END)
    return builder


def recursion_limit(max_extractions: int) -> int:
    """ingest, start, (reason, extract) per call, one refusal, the last reason, respond."""
    return 2 * (max_extractions + 2) + 6


# A higher default than LangGraph's 25, so servers run large extraction budgets without a config.
graph = build().compile().with_config(recursion_limit=100)
