"""The vLLM backend's requests and results as plain functions: no vLLM needed to build or test them.

Each request carries its own settings into its own SamplingParams: the sampling fields, the token limit
of its phase, and NoWait as a -100 logit bias on the reflection tokens (vLLM applies `logit_bias` per
request), only for the requests that asked for it. The thinking budget runs in two phases per request
(the rules: tools/backends/thinking.py): generate at most `budget` tokens; if the think block is still open,
close it and continue the answer, in the same rendered text, in a second request with the tokens left.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

from tools.backends.base import PerceiveOutput, PerceiveRequest, ReasonOutput, SamplingSettings
from tools.backends.openai_requests import perceive_messages, sampling_fields
from tools.backends.output_parsing import estimated_thinking_tokens, split_thinking
from tools.backends.thinking import close_thinking, thinking_phase_tokens, tokens_after_thinking
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
    left = tokens_after_thinking(settings, finish, used)
    return Continuation(prompt + close_thinking(text), left) if left else None


def first_job(prompt: str, settings: SamplingSettings, reflection_ids: Sequence[int]) -> Job:
    return Job(prompt, phase_params(settings, thinking_phase_tokens(settings), reflection_ids))


def second_job(prompt: str, first: Completion, settings: SamplingSettings,
               reflection_ids: Sequence[int]) -> Job | None:  # fmt: skip
    """The continuation of a request whose first phase used up its thinking budget, if any."""
    follow = continuation(prompt, first.text, first.output_tokens, first.finish, settings)
    if follow is None:
        return None
    return Job(follow.prompt, phase_params(settings, follow.max_tokens, reflection_ids))


def reason_output(first: Completion, second: Completion | None, seconds: float) -> ReasonOutput:
    """One turn from its one or two phases, the budget's forced close included."""
    closed_by_budget = second is not None and "</think>" not in first.text
    raw = first.text if second is None else close_thinking(first.text) + second.text
    total = first.output_tokens + (second.output_tokens if second else 0)
    thinking = first.output_tokens if closed_by_budget else estimated_thinking_tokens(total, *split_thinking(raw))
    return ReasonOutput.from_raw(raw, first.prompt_tokens, thinking, total, seconds, (second or first).finish)


def perceive_job(request: PerceiveRequest, urls: list[str]) -> Job:
    """A perceiver request: greedy, thinking off, the image first and the instruction last."""
    params = {"temperature": 0.0, "max_tokens": request.max_new_tokens}
    return Job(perceive_messages(request, urls), params, NO_THINKING)


def perceive_output(done: Completion, seconds: float) -> PerceiveOutput:
    return PerceiveOutput(text=split_thinking(done.text)[1], prompt_tokens=done.prompt_tokens,
                          output_tokens=done.output_tokens, seconds=seconds)  # fmt: skip
