"""The vLLM backend's requests and results as plain functions: no vLLM needed to build or test them.

Each request carries its own settings into its own SamplingParams: the sampling fields, the token limit
of its phase, and NoWait as a -100 logit bias on the reflection tokens (vLLM applies `logit_bias` per
request), only for the requests that asked for it. The paper's thinking budget runs in two phases per
request: generate at most `budget` tokens; if the think block is still open, close it ("\\n</think>\\n\\n")
and continue the answer in a second request with the tokens left. vLLM's soft boost of "\\n" and
"</think>" near the budget is not available; the budget is a hard close.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

from tools.backends.base import PerceiveOutput, PerceiveRequest, ReasonOutput, SamplingSettings
from tools.backends.openai_wire import CLOSE_THINK, first_phase_tokens, perceive_messages, sampling_fields
from tools.backends.output_parsing import split_thinking
from tools.backends.vllm_engine import Completion, Job

NO_THINKING = {"chat_template_kwargs": {"enable_thinking": False}}


def sampling_kwargs(settings: SamplingSettings, max_tokens: int, banned_ids: Sequence[int] = ()) -> dict:
    """SamplingParams keyword arguments for one phase: the OpenAI fields, plus NoWait as a logit bias."""
    kwargs: dict[str, Any] = sampling_fields(settings, max(max_tokens, 1))
    if banned_ids:
        kwargs["logit_bias"] = {int(i): -100.0 for i in banned_ids}
    return kwargs


def phase_params(settings: SamplingSettings, max_tokens: int, reflection_ids: Sequence[int]) -> dict:
    """One request's phase: the reflection tokens are banned only when this request asked for NoWait."""
    return sampling_kwargs(settings, max_tokens, reflection_ids if settings.no_wait else ())


@dataclass(frozen=True)
class Continuation:
    prompt: str
    max_tokens: int


def continuation(prompt: str, text: str, used: int, finish: str, settings: SamplingSettings) -> Continuation | None:
    """The second call after a budgeted first one, or None when the first one already finished."""
    if not (settings.thinking and settings.thinking_budget) or finish != "length":
        return None
    left = settings.max_new_tokens - used
    if left <= 0:
        return None
    if "</think>" in text:
        return Continuation(prompt + text, left)
    return Continuation(prompt + text + CLOSE_THINK, left)


def first_job(prompt: str, settings: SamplingSettings, reflection_ids: Sequence[int]) -> Job:
    return Job(prompt, phase_params(settings, first_phase_tokens(settings), reflection_ids))


def second_job(prompt: str, first: Completion, settings: SamplingSettings,
               reflection_ids: Sequence[int]) -> Job | None:  # fmt: skip
    """The continuation of a request whose first phase used up its thinking budget, if any."""
    follow = continuation(prompt, first.text, first.output_tokens, first.finish, settings)
    if follow is None:
        return None
    return Job(follow.prompt, phase_params(settings, follow.max_tokens, reflection_ids))


def assemble(first: str, second: str | None, closed_by_budget: bool) -> str:
    """The full raw output of both phases, the forced close included."""
    if second is None:
        return first
    return first + (CLOSE_THINK if closed_by_budget else "") + second


def to_reason_output(raw: str, prompt_tokens: int, thinking_tokens: int, output_tokens: int,
                     seconds: float, finish: str) -> ReasonOutput:  # fmt: skip
    return ReasonOutput.from_raw(raw, prompt_tokens, thinking_tokens, output_tokens, seconds, finish)


def reason_output(first: Completion, second: Completion | None, seconds: float) -> ReasonOutput:
    """One turn from its one or two phases."""
    closed = second is not None and "</think>" not in first.text
    raw = assemble(first.text, second.text if second else None, closed_by_budget=closed)
    total = first.output_tokens + (second.output_tokens if second else 0)
    thinking = first.output_tokens if closed else _thinking_share(raw, total)
    return to_reason_output(raw, first.prompt_tokens, thinking, total, seconds, (second or first).finish)


def _thinking_share(raw: str, total: int) -> int:
    thinking, visible = split_thinking(raw)
    chars = len(thinking) + len(visible)
    return round(total * len(thinking) / chars) if chars else 0


def perceive_job(request: PerceiveRequest, urls: list[str]) -> Job:
    """A perceiver request: greedy, thinking off, the image first and the instruction last."""
    params = {"temperature": 0.0, "max_tokens": request.max_new_tokens}
    return Job(perceive_messages(request, urls), params, NO_THINKING)


def perceive_output(done: Completion, seconds: float) -> PerceiveOutput:
    return PerceiveOutput(text=split_thinking(done.text)[1], prompt_tokens=done.prompt_tokens,
                          output_tokens=done.output_tokens, seconds=seconds)  # fmt: skip
