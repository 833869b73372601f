"""The perceiver on transformers, in process: AutoProcessor + AutoModelForImageTextToText, greedy.

One code path serves LLaVA-OneVision, Llava, Idefics3/SmolVLM, Qwen2.5-VL/Qwen3-VL and InternVL (`-hf`
checkpoints): the processor's own chat template places the image tokens, the processor expands them,
`generate` decodes greedily with thinking switched off (templates that know `enable_thinking` honour it;
others ignore it). Batching and the reuse of an image's keys/values live in the engine
(tools/backends/perceiver_engine.py), one per loaded model.

Loading a VLM and checking it happen in one function (`load_vlm`), so `xthink vet-train` (tools/vet/train.py)
starts from exactly the model inference would load, converted the same way when it is a paper checkpoint.
"""

from __future__ import annotations

from typing import Sequence

from tools.backends.base import PerceiveOutput, PerceiveRequest
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


class TransformersPerceiver:
    """A vision-language model served by `generate` in this process."""

    def __init__(self, model: str, placement: Placement = Placement(), options: EngineOptions = EngineOptions()):
        self.spec = parse_model(model, "perceiver")
        self.name = model
        self.placement = placement
        self.options = options

    def load(self):
        """Return (processor, model), loading them on first use."""
        return cached_where_placed(("perceiver", self.spec.name), self.placement,
                                   lambda device, dtype: load_vlm(self.name, dtype, device))  # fmt: skip

    @property
    def engine(self):
        """The process-wide batching/caching engine of this model (tools/backends/perceiver_engine.py)."""
        from tools.backends.perceiver_engine import PerceiverEngine

        processor, model = self.load()
        return cached_where_placed(("perceiver-engine", self.spec.name), self.placement,
                                   lambda *_: PerceiverEngine(processor, model, self.options))  # fmt: skip

    def render(self, request: PerceiveRequest) -> str:
        return self.engine.render(request)

    def perceive(self, requests: Sequence[PerceiveRequest]) -> list[PerceiveOutput]:
        return self.engine.perceive(list(requests))


def load_vlm(model: str, dtype, device: str | None = None, what: str = "perceiver"):
    """(processor, model) of the VLM `model` names, checked to be a VLM with a chat template; the paper's
    LLaVA-NeXT checkpoints are converted first. On `device` in eval mode when one is given (inference); left
    where `from_pretrained` puts it otherwise (training: the trainer places it). `what` names the model in the
    errors: "perceiver", or "base" for the model `xthink vet-train` starts from."""
    from transformers import AutoModelForImageTextToText, AutoProcessor

    spec = parse_model(model, "perceiver")
    location = vlm_folder(model)
    config = load_config(spec, "perceiver", location)
    if not is_vision_config(config):
        raise ModelLoadError(
            f"{what} '{model}' is not a vision-language model (model type '{config.model_type}'); "
            "pass an image-text-to-text model such as llava-hf/llava-onevision-qwen2-0.5b-ov-hf"
        )
    try:
        processor = AutoProcessor.from_pretrained(location)
        vlm = AutoModelForImageTextToText.from_pretrained(location, dtype=dtype)
        if device is not None:
            vlm = vlm.to(device).eval()
    except Exception as exc:  # noqa: BLE001
        raise explain_load_failure(spec, "perceiver", exc) from exc
    if not getattr(processor, "chat_template", None):
        raise ModelLoadError(f"{what} '{model}' ships no chat template; use an instruction-tuned VLM")
    return processor, vlm


def vlm_folder(model: str) -> str:
    """The folder to load `model` from: the paper's LLaVA-NeXT checkpoints are converted once into a cache first."""
    from tools.backends.conversion_cache import ensure_converted, needs_conversion
    from tools.backends.llava_next_mapping import ConversionError

    location = parse_model(model, "perceiver").location
    if not needs_conversion(location):
        return location
    try:
        return ensure_converted(location)
    except ConversionError as exc:
        raise ModelLoadError(f"perceiver '{model}' needs conversion from LLaVA-NeXT format: {exc}") from None
