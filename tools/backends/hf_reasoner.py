"""The reasoner on transformers, in process: chat template with tools and thinking, batched and cached.

Prompts are rendered by the model's own chat template (`tools=`, `enable_thinking=`;
tools/backends/chat_template.py), so a real Qwen3 checkpoint gets exactly the layout it was trained on. The
model loads lazily, once per process, with one engine (tools/backends/reasoner_engine.py) that every backend
object naming the same model shares: concurrent requests are batched into one `generate`, and a prompt that
starts like an earlier sequence (the next turn of a conversation, the shared system prompt of a run) reuses
its keys/values.

Why not transformers' continuous batching (`init_continuous_batching`): it applies one set of logits
processors and one RNG seed to every request and drops processors it does not know, while each request
here needs its own thinking budget, NoWait mask, sampling settings and seed (and the tests their forced
decoding). Padded `generate` with per-row processors meets all of these.
"""

from __future__ import annotations

import logging
from typing import Callable, Sequence

from tools.backends.base import ReasonOutput, ReasonRequest
from tools.backends.chat_template import render_reasoner_prompt
from tools.backends.loading import (
    ModelLoadError,
    Placement,
    cached_where_placed,
    explain_load_failure,
    is_vision_config,
    load_config,
)
from tools.backends.options import EngineOptions
from tools.backends.spec import parse_model

log = logging.getLogger(__name__)

ProcessorFactory = Callable[[ReasonRequest, object], list]


class TransformersReasoner:
    """A causal LM served by batched `generate` calls.

    `extra_logits_processors`, when given, is called per request with (request, tokenizer) and returns
    extra logits processors appended after the paper's ones (constraints, forced decoding in tests).
    """

    def __init__(
        self,
        model: str,
        placement: Placement = Placement(),
        extra_logits_processors: ProcessorFactory | None = None,
        options: EngineOptions = EngineOptions(),
    ):
        self.spec = parse_model(model, "reasoner")
        self.name = model
        self.placement = placement
        self.extra_logits_processors = extra_logits_processors
        self.options = options

    def load(self):
        """Return (tokenizer, model), loading them on first use."""
        return cached_where_placed(("reasoner", self.spec.name), self.placement, self._load)

    @property
    def engine(self):
        """The process-wide batching engine of this model (created with the first backend's options)."""
        from tools.backends.reasoner_engine import ReasonerEngine

        tokenizer, model = self.load()
        return cached_where_placed(("reasoner-engine", self.spec.name), self.placement,
                                   lambda *_: ReasonerEngine(tokenizer, model, self.options))  # fmt: skip

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
        return render_reasoner_prompt(tokenizer, request)

    def reason(self, requests: Sequence[ReasonRequest]) -> list[ReasonOutput]:
        tokenizer, _ = self.load()
        extra = [self.extra_logits_processors(r, tokenizer) if self.extra_logits_processors else [] for r in requests]
        generated = self.engine.generate(list(zip(requests, extra)))
        return [to_output(tokenizer, g) for g in generated]


def to_output(tokenizer, generated) -> ReasonOutput:
    """Decode and parse one row's tokens into a ReasonOutput."""
    new = generated.tokens
    raw = tokenizer.decode(new, skip_special_tokens=True)
    end_think = tokenizer.convert_tokens_to_ids("</think>")
    has_thinking = "</think>" in raw or "<think>" in raw
    thinking_tokens = new.index(end_think) + 1 if end_think in new else (len(new) if has_thinking else 0)
    return ReasonOutput.from_raw(raw, generated.prompt_tokens, thinking_tokens, len(new), generated.seconds,
                                 generated.finish_reason, generated.cached_tokens)  # fmt: skip
