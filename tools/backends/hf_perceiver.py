"""The perceiver on transformers, in process: AutoProcessor + AutoModelForImageTextToText, greedy.

One code path serves LLaVA-OneVision, Llava, Idefics3/SmolVLM, Qwen2.5-VL/Qwen3-VL and InternVL (`-hf`
checkpoints): the processor's own chat template places the image tokens, the processor expands them,
`generate` decodes greedily with thinking switched off (templates that know `enable_thinking` honour it;
others ignore it). Batching and the reuse of an image's keys/values live in the engine
(tools/backends/perceiver_engine.py), one per loaded model.
"""

from __future__ import annotations

from typing import Sequence

from tools.backends.base import PerceiveOutput, PerceiveRequest
from tools.backends.loading import (
    ModelLoadError,
    Placement,
    cached,
    explain_load_failure,
    is_vision_config,
    load_config,
)
from tools.backends.options import EngineOptions
from tools.backends.spec import parse_model


class TransformersPerceiver:
    """A vision-language model served by `generate` in this process."""

    def __init__(self, model: str, placement: Placement = Placement(), options: EngineOptions = EngineOptions()):
        self.spec = parse_model(model, "perceiver")
        self.name = model
        self.placement = placement
        self.options = options

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
        from tools.backends.checkpoint_convert import ConversionError, ensure_converted, needs_conversion

        if not needs_conversion(self.spec.location):
            return self.spec.location
        try:
            return ensure_converted(self.spec.location)
        except ConversionError as exc:
            raise ModelLoadError(f"perceiver '{self.name}' needs conversion from LLaVA-NeXT format: {exc}") from None

    @property
    def engine(self):
        """The process-wide batching/caching engine of this model (tools/backends/perceiver_engine.py)."""
        from tools.backends.perceiver_engine import PerceiverEngine

        processor, model = self.load()
        device, dtype = self.placement.resolve()
        key = ("perceiver-engine", self.spec.name, device, str(dtype))
        return cached(key, lambda: PerceiverEngine(processor, model, self.options))

    def render(self, request: PerceiveRequest) -> str:
        return self.engine.render(request)

    def perceive(self, requests: Sequence[PerceiveRequest]) -> list[PerceiveOutput]:
        return self.engine.perceive(list(requests))
