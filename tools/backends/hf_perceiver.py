"""The perceiver on transformers, in process: AutoProcessor + AutoModelForImageTextToText, greedy.

One code path serves LLaVA-OneVision, Llava, Idefics3/SmolVLM and Qwen2.5-VL/Qwen3-VL: the processor's
own chat template places the image tokens, the processor expands them, `generate` decodes greedily with
thinking switched off (templates that know `enable_thinking` honour it; others ignore it).
"""

from __future__ import annotations

import time
from typing import Sequence

from agent.parsing import split_thinking
from tools.backends.base import PerceiveOutput, PerceiveRequest
from tools.backends.loading import (
    ModelLoadError,
    Placement,
    cached,
    explain_load_failure,
    is_vision_config,
    load_config,
)
from tools.backends.spec import parse_model


class TransformersPerceiver:
    """A vision-language model served by `generate` in this process."""

    def __init__(self, model: str, placement: Placement = Placement()):
        self.spec = parse_model(model, "perceiver")
        self.name = model
        self.placement = placement

    def load(self):
        """Return (processor, model), loading them on first use."""
        device, dtype = self.placement.resolve()
        return cached(("perceiver", self.spec.name, device, str(dtype)), lambda: self._load(device, dtype))

    def _load(self, device: str, dtype):
        from transformers import AutoModelForImageTextToText, AutoProcessor

        location = self._location()
        config = load_config(self.spec, "perceiver", location)
        if not is_vision_config(config):
            raise ModelLoadError(
                f"perceiver '{self.name}' is not a vision-language model (model type '{config.model_type}'); "
                "pass an image-text-to-text model such as llava-hf/llava-onevision-qwen2-0.5b-ov-hf"
            )
        try:
            processor = AutoProcessor.from_pretrained(location)
            model = AutoModelForImageTextToText.from_pretrained(location, dtype=dtype).to(device).eval()
        except Exception as exc:  # noqa: BLE001
            raise explain_load_failure(self.spec, "perceiver", exc) from exc
        if not getattr(processor, "chat_template", None):
            raise ModelLoadError(f"perceiver '{self.name}' ships no chat template; use an instruction-tuned VLM")
        return processor, model

    def _location(self) -> str:
        """The folder to load: the paper's LLaVA-NeXT checkpoints are converted once into a cache first."""
        from tools.convert import ConversionError, ensure_converted, needs_conversion

        if not needs_conversion(self.spec.location):
            return self.spec.location
        try:
            return ensure_converted(self.spec.location)
        except ConversionError as exc:
            raise ModelLoadError(f"perceiver '{self.name}' needs conversion from LLaVA-NeXT format: {exc}") from None

    def render(self, request: PerceiveRequest) -> str:
        processor, _ = self.load()
        content = [{"type": "image"} for _ in request.images] + [{"type": "text", "text": request.instruction}]
        return processor.apply_chat_template(
            [{"role": "user", "content": content}], add_generation_prompt=True, tokenize=False, enable_thinking=False
        )

    def perceive(self, requests: Sequence[PerceiveRequest]) -> list[PerceiveOutput]:
        return [self._perceive_one(r) for r in requests]

    def _perceive_one(self, request: PerceiveRequest) -> PerceiveOutput:
        import torch

        processor, model = self.load()
        inputs = processor(images=list(request.images), text=self.render(request), return_tensors="pt")
        inputs = inputs.to(model.device).to(model.dtype)
        prompt_len = inputs["input_ids"].shape[1]
        started = time.perf_counter()
        with torch.inference_mode():
            out = model.generate(
                **inputs,
                max_new_tokens=request.max_new_tokens,
                do_sample=False,
                temperature=None,
                top_p=None,
                top_k=None,
            )
        seconds = time.perf_counter() - started
        new = out[0, prompt_len:]
        _, text = split_thinking(processor.decode(new, skip_special_tokens=True))
        return PerceiveOutput(text=text, prompt_tokens=prompt_len, output_tokens=int(new.numel()), seconds=seconds)
