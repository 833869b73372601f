"""vLLM in process, for batch evaluation on a GPU (extra `[vllm]`). Kept thin on purpose.

Everything that can be checked without vLLM is a plain function here and tested: prompts are rendered
by the model's own chat template through its Hugging Face tokenizer (the same text the transformers
backend generates from), sampling parameters are mapped from SamplingSettings, and the paper's thinking
budget is honoured in two phases: generate at most `budget` tokens; if the think block is still open,
close it ("\\n</think>\\n\\n") and continue the answer in a second call with the tokens left. NoWait maps
to a -100 logit bias on the reflection tokens. Prefix caching is on, so the repeated prefixes of an
iterative trajectory (and of several requests on one image) are computed once. vLLM's soft boost of
"\\n" and "</think>" near the budget is not available; the budget is a hard close.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Sequence

from tools.backends.output_parsing import split_thinking
from tools.backends.base import PerceiveOutput, PerceiveRequest, ReasonOutput, ReasonRequest, SamplingSettings
from tools.backends.loading import ModelLoadError, cached
from tools.backends.openai_api import (
    CLOSE_THINK,
    DataUrlCache,
    first_phase_tokens,
    perceive_messages,
    sampling_fields,
)
from tools.backends.spec import parse_model

INSTALL_HINT = "vLLM is not installed: pip install 'extract-think[vllm]' (needs a CUDA GPU)"


def import_vllm():
    try:
        import vllm
    except ImportError:
        raise ModelLoadError(INSTALL_HINT) from None
    return vllm


def sampling_kwargs(settings: SamplingSettings, max_tokens: int, banned_ids: Sequence[int] = ()) -> dict:
    """SamplingParams keyword arguments for one phase: the OpenAI fields, plus NoWait as a logit bias."""
    kwargs: dict[str, Any] = sampling_fields(settings, max(max_tokens, 1))
    if banned_ids:
        kwargs["logit_bias"] = {int(i): -100.0 for i in banned_ids}
    return kwargs


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


def assemble(first: str, second: str | None, closed_by_budget: bool) -> str:
    """The full raw output of both phases, the forced close included."""
    if second is None:
        return first
    return first + (CLOSE_THINK if closed_by_budget else "") + second


def to_reason_output(raw: str, prompt_tokens: int, thinking_tokens: int, output_tokens: int,
                     seconds: float, finish: str) -> ReasonOutput:
    return ReasonOutput.from_raw(raw, prompt_tokens, thinking_tokens, output_tokens, seconds, finish)


class _VllmModel:
    role = "model"

    def __init__(self, model: str, **engine_kwargs: Any):
        self.spec = parse_model(model, self.role)
        self.name = model
        self.engine_kwargs = {"enable_prefix_caching": True, **engine_kwargs}

    def load(self):
        vllm = import_vllm()
        return cached(("vllm", self.spec.name), lambda: vllm.LLM(model=self.spec.name, **self.engine_kwargs))


class VllmReasoner(_VllmModel):
    role = "reasoner"

    def render(self, request: ReasonRequest) -> str:
        tokenizer = self.load().get_tokenizer()
        return tokenizer.apply_chat_template(
            [m.to_template() for m in request.messages], tools=list(request.tools) or None,
            add_generation_prompt=True, tokenize=False, enable_thinking=request.settings.thinking,
        )  # fmt: skip

    def reason(self, requests: Sequence[ReasonRequest]) -> list[ReasonOutput]:
        """One batched generate per phase for all requests."""
        vllm = import_vllm()
        llm = self.load()
        banned = self._banned(requests)
        prompts = [self.render(r) for r in requests]
        started = time.perf_counter()
        params = [vllm.SamplingParams(**sampling_kwargs(r.settings, first_phase_tokens(r.settings), banned))
                  for r in requests]  # fmt: skip
        firsts = llm.generate(prompts, params, use_tqdm=False)
        seconds = time.perf_counter() - started
        return [self._finish(llm, vllm, r, p, o, banned, seconds) for r, p, o in zip(requests, prompts, firsts)]

    def _banned(self, requests: Sequence[ReasonRequest]) -> list[int]:
        if not any(r.settings.no_wait for r in requests):
            return []
        from tools.backends.logits import reflection_token_ids

        return reflection_token_ids(self.load().get_tokenizer())

    def _finish(self, llm, vllm, request, prompt, first, banned, seconds) -> ReasonOutput:
        out = first.outputs[0]
        used = len(out.token_ids)
        follow = continuation(prompt, out.text, used, out.finish_reason or "stop", request.settings)
        second_text, finish, total = None, out.finish_reason or "stop", used
        if follow is not None:
            started = time.perf_counter()
            params = vllm.SamplingParams(**sampling_kwargs(request.settings, follow.max_tokens, banned))
            second = llm.generate([follow.prompt], params, use_tqdm=False)[0].outputs[0]
            seconds += time.perf_counter() - started
            second_text, finish, total = second.text, second.finish_reason or "stop", used + len(second.token_ids)
        closed = "</think>" not in out.text
        raw = assemble(out.text, second_text, closed_by_budget=closed)
        thinking_tokens = used if follow is not None and closed else _thinking_share(raw, total)
        return to_reason_output(raw, len(first.prompt_token_ids), thinking_tokens, total, seconds, finish)


def _thinking_share(raw: str, total: int) -> int:
    thinking, visible = split_thinking(raw)
    chars = len(thinking) + len(visible)
    return round(total * len(thinking) / chars) if chars else 0


class VllmPerceiver(_VllmModel):
    role = "perceiver"

    def __init__(self, model: str, **engine_kwargs: Any):
        super().__init__(model, **engine_kwargs)
        self._urls = DataUrlCache()

    def perceive(self, requests: Sequence[PerceiveRequest]) -> list[PerceiveOutput]:
        vllm = import_vllm()
        llm = self.load()
        conversations = [
            perceive_messages(r, [self._urls.get(img) for img in r.images])
            for r in requests
        ]  # fmt: skip
        params = [vllm.SamplingParams(temperature=0.0, max_tokens=r.max_new_tokens) for r in requests]
        started = time.perf_counter()
        outputs = llm.chat(conversations, params, use_tqdm=False, chat_template_kwargs={"enable_thinking": False})
        seconds = (time.perf_counter() - started) / max(len(requests), 1)
        return [
            PerceiveOutput(text=split_thinking(o.outputs[0].text)[1], prompt_tokens=len(o.prompt_token_ids),
                           output_tokens=len(o.outputs[0].token_ids), seconds=seconds)
            for o in outputs
        ]  # fmt: skip
