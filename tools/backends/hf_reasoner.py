"""The reasoner on transformers, in process: chat template with tools and thinking, budgeted generate.

Prompts are rendered by the model's own chat template (`tools=`, `enable_thinking=`), so a real Qwen3
checkpoint gets exactly the layout it was trained on. The model loads lazily, once per process.
"""

from __future__ import annotations

import logging
import time
from typing import Callable, Sequence

from agent.parsing import split_output
from tools.backends.base import ReasonOutput, ReasonRequest
from tools.backends.loading import (
    ModelLoadError,
    Placement,
    cached,
    explain_load_failure,
    is_vision_config,
    load_config,
)
from tools.backends.spec import parse_model

log = logging.getLogger(__name__)

ProcessorFactory = Callable[[ReasonRequest, object], list]


class TransformersReasoner:
    """A causal LM served by `AutoModelForCausalLM.generate`.

    `extra_logits_processors`, when given, is called per request with (request, tokenizer) and returns
    extra logits processors appended after the paper's ones (constraints, forced decoding in tests).
    """

    def __init__(
        self,
        model: str,
        placement: Placement = Placement(),
        extra_logits_processors: ProcessorFactory | None = None,
    ):
        self.spec = parse_model(model, "reasoner")
        self.name = model
        self.placement = placement
        self.extra_logits_processors = extra_logits_processors

    def load(self):
        """Return (tokenizer, model), loading them on first use."""
        device, dtype = self.placement.resolve()
        return cached(("reasoner", self.spec.name, device, str(dtype)), lambda: self._load(device, dtype))

    def _load(self, device: str, dtype):
        from transformers import AutoModelForCausalLM, AutoTokenizer

        config = load_config(self.spec, "reasoner")
        if is_vision_config(config):
            raise ModelLoadError(
                f"reasoner '{self.name}' is a vision-language model ({config.model_type}); "
                "the reasoner must be a text LLM such as Qwen/Qwen3-1.7B (pass VLMs as --perceiver)"
            )
        try:
            tokenizer = AutoTokenizer.from_pretrained(self.spec.location)
            model = AutoModelForCausalLM.from_pretrained(self.spec.location, dtype=dtype).to(device).eval()
        except Exception as exc:  # noqa: BLE001
            raise explain_load_failure(self.spec, "reasoner", exc) from exc
        if not tokenizer.chat_template:
            raise ModelLoadError(f"reasoner '{self.name}' has no chat template; use an instruction-tuned model")
        return tokenizer, model

    def render(self, request: ReasonRequest) -> str:
        """The exact prompt text the model sees (also used by snapshot tests)."""
        tokenizer, _ = self.load()
        return tokenizer.apply_chat_template(
            [m.to_template() for m in request.messages],
            tools=list(request.tools) or None,
            add_generation_prompt=True,
            tokenize=False,
            enable_thinking=request.settings.thinking,
        )

    def reason(self, requests: Sequence[ReasonRequest]) -> list[ReasonOutput]:
        return [self._reason_one(r) for r in requests]

    def _reason_one(self, request: ReasonRequest) -> ReasonOutput:
        import torch

        tokenizer, model = self.load()
        enc = tokenizer(self.render(request), return_tensors="pt", add_special_tokens=False).to(model.device)
        prompt_len = enc["input_ids"].shape[1]
        settings = request.settings
        eos_ids = stop_ids(tokenizer, model)
        if settings.seed is not None:
            torch.manual_seed(settings.seed)
        started = time.perf_counter()
        with torch.inference_mode():
            out = model.generate(
                **enc,
                logits_processor=self._processors(request, tokenizer, prompt_len),
                **generation_kwargs(settings, eos_ids, tokenizer.pad_token_id),
            )
        seconds = time.perf_counter() - started
        new = out[0, prompt_len:].tolist()
        raw = tokenizer.decode(new, skip_special_tokens=True)
        parts = split_output(raw)
        end_think = tokenizer.convert_tokens_to_ids("</think>")
        thinking_tokens = new.index(end_think) + 1 if end_think in new else (len(new) if parts.thinking else 0)
        stopped = bool(new) and new[-1] in eos_ids
        return ReasonOutput(
            raw=raw,
            thinking=parts.thinking,
            text=parts.text,
            tool_calls=parts.tool_calls,
            tool_errors=parts.tool_errors,
            prompt_tokens=prompt_len,
            thinking_tokens=thinking_tokens,
            output_tokens=len(new),
            seconds=seconds,
            finish_reason="stop" if stopped or len(new) < settings.max_new_tokens else "length",
        )

    def _processors(self, request: ReasonRequest, tokenizer, prompt_len: int):
        from transformers import LogitsProcessorList

        from tools.backends.logits import SuppressTokensProcessor, ThinkingBudgetProcessor, reflection_token_ids

        settings = request.settings
        procs = LogitsProcessorList()
        end_think = tokenizer.convert_tokens_to_ids("</think>")
        has_think = end_think is not None and end_think != tokenizer.unk_token_id
        if settings.thinking and settings.thinking_budget and has_think:
            newline = tokenizer.encode("\n", add_special_tokens=False)[0]
            procs.append(ThinkingBudgetProcessor(settings.thinking_budget, prompt_len, newline, end_think))
        elif settings.thinking and settings.thinking_budget:
            log.warning("reasoner %s has no </think> token; the thinking budget is not applied", self.name)
        if settings.no_wait:
            procs.append(SuppressTokensProcessor(reflection_token_ids(tokenizer)))
        if self.extra_logits_processors is not None:
            procs.extend(self.extra_logits_processors(request, tokenizer))
        return procs


def stop_ids(tokenizer, model) -> list[int]:
    """End-of-turn ids: the generation config's eos ids plus the tokenizer's eos."""
    ids = model.generation_config.eos_token_id
    ids = list(ids) if isinstance(ids, (list, tuple)) else ([ids] if ids is not None else [])
    if tokenizer.eos_token_id is not None and tokenizer.eos_token_id not in ids:
        ids.append(tokenizer.eos_token_id)
    return ids


def generation_kwargs(settings, eos_ids: list[int], pad_id: int | None) -> dict:
    """Map SamplingSettings onto `generate` arguments (greedy drops the sampling knobs)."""
    kwargs: dict = {"max_new_tokens": settings.max_new_tokens, "eos_token_id": eos_ids}
    kwargs["pad_token_id"] = pad_id if pad_id is not None else eos_ids[0]
    if settings.greedy:
        kwargs.update(do_sample=False, temperature=None, top_p=None, top_k=None)
    else:
        kwargs.update(do_sample=True, temperature=settings.temperature, top_p=settings.top_p)
    return kwargs
