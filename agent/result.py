"""The Result of a run (or of one conversation turn) from the graph's final state."""

from __future__ import annotations

from agent.single_pass import answer_of
from agent.trace import ExtractStep, Result


def build_result(mode: str, state: dict, steps: list, reasoner: str | None, perceiver: str, seconds: float) -> Result:
    """`steps` are the run's (a conversation turn passes only its own)."""
    extracted = answer_of(state)
    calls = sum(1 for s in steps if isinstance(s, ExtractStep) and s.purpose != "direct" and s.error is None)
    return Result(
        mode=mode, question=state.get("question", ""), options=state.get("options") or [],
        images=state.get("images", []), answer=extracted.answer, answer_found=extracted.found,
        final_output=state.get("final_output", ""), steps=steps, extraction_calls=calls,
        budget_spent=mode == "iterative" and bool(calls) and state.get("extractions_left", 1) == 0,
        reasoner=None if mode == "direct" else reasoner, perceiver=perceiver, seconds=seconds,
    )  # fmt: skip
