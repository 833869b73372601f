"""Nodes of the single-pass regimes: Extract+Think, Caption+Think and the end-to-end VLM (direct).

Each node is a short function of (state, runtime) that calls one model through the runtime context
and returns a state update with its trace step. Nothing here holds pixels in state.
"""

from __future__ import annotations

from typing import Literal

from langgraph.runtime import Runtime

from agent import prompts
from agent.context import live_context
from agent.token_stream import token_relay
from agent.answer import extract_answer
from tools.backends.output_parsing import split_thinking
from agent.state import AgentContext, AgentState
from agent.trace import ExtractStep, ReasonStep, ToolCallRecord
from tools.backends.base import Message, PerceiveRequest, ReasonOutput, ReasonRequest
from agent.extract_tool import run_extraction
from tools.images.pixels import fit_aspect


def reason_record(out: ReasonOutput, purpose: str) -> ReasonStep:
    """The trace step of one reasoner turn."""
    return ReasonStep(
        purpose=purpose,
        thinking=out.thinking,
        text=out.text,
        tool_calls=[ToolCallRecord(id=c.id, name=c.name, arguments=c.arguments) for c in out.tool_calls],
        tool_errors=[e.error for e in out.tool_errors],
        prompt_tokens=out.prompt_tokens,
        thinking_tokens=out.thinking_tokens,
        output_tokens=out.output_tokens,
        seconds=out.seconds,
        cached_tokens=out.cached_tokens,
        finish_reason=out.finish_reason,
    )


def route_start(state: AgentState) -> Literal["observe", "perceive"]:
    """Extract+Think writes its request first unless the caller passed one."""
    return "perceive" if state.get("request") else "observe"


def observe(state: AgentState, runtime: Runtime[AgentContext]) -> dict:
    """The reasoner writes the 'contents to observe' request (Prism-style few-shot, thinking off)."""
    ctx = live_context(runtime, state)
    settings = ctx.settings.paper(
        thinking=False,
        greedy=ctx.settings.greedy,
        seed=ctx.settings.seed,
        max_new_tokens=ctx.observe_max_new_tokens,
    )
    prompt = prompts.observe_prompt(state["question"], state.get("options"))
    out = ctx.reasoner.reason([ReasonRequest(messages=(Message("user", prompt),), settings=settings)])[0]
    return {"request": prompts.clean_observe_reply(out.text), "steps": [reason_record(out, "observe")]}


def perceive(state: AgentState, runtime: Runtime[AgentContext]) -> dict:
    """One extraction per image: with the request (Extract+Think) or the generic instruction (Caption+Think)."""
    ctx = live_context(runtime, state)
    request = state.get("request") or None
    purpose = "extract" if request else "caption"
    steps = [
        run_extraction(
            ctx.perceiver, ctx.store, image.id, request, purpose=purpose, max_new_tokens=ctx.perceiver_max_new_tokens
        )
        for image in state["images"]
    ]
    if len(steps) == 1:
        description = steps[0].output
    else:
        description = "\n\n".join(f"Image {i}: {s.output}" for i, s in enumerate(steps, start=1))
    return {"description": description, "steps": steps}


def think(state: AgentState, runtime: Runtime[AgentContext]) -> dict:
    """The reasoner answers from the description with the paper's reasoning prompt."""
    ctx = live_context(runtime, state)
    prompt = prompts.reasoning_prompt(
        state.get("description", ""), state["question"], state.get("options"), ctx.settings.thinking
    )
    relay = token_relay("think", ctx.settings.thinking) if ctx.stream_text else None
    out = ctx.reasoner.reason([ReasonRequest(messages=(Message("user", prompt),), settings=ctx.settings, on_text=relay)])[0]
    return {"final_output": out.raw, "final_text": out.text, "steps": [reason_record(out, "answer")]}


def direct(state: AgentState, runtime: Runtime[AgentContext]) -> dict:
    """The end-to-end baseline: the VLM sees the images and the question and answers itself."""
    ctx = live_context(runtime, state)
    instruction = prompts.direct_prompt(state["question"], state.get("options"))
    images = tuple(fit_aspect(ctx.store.get(image.id)) for image in state["images"])
    key = "+".join(ctx.store.ref(image.id).fingerprint for image in state["images"])  # shares the images' cache
    request = PerceiveRequest(images=images, instruction=instruction, image_key=key,
                              max_new_tokens=ctx.perceiver_max_new_tokens)
    out = ctx.perceiver.perceive([request])[0]
    step = ExtractStep(
        purpose="direct",
        instruction=instruction,
        image_id=",".join(image.id for image in state["images"]),
        output=out.text,
        prompt_tokens=out.prompt_tokens,
        output_tokens=out.output_tokens,
        seconds=out.seconds,
        cached_tokens=out.cached_tokens,
    )
    return {"final_output": out.text, "final_text": split_thinking(out.text)[1], "steps": [step]}


def answer_of(state: AgentState):
    """The paper's answer extraction applied to the final visible text."""
    return extract_answer(state.get("final_text", ""), state.get("options"))
