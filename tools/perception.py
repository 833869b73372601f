"""One perceiver call on an image or a region of it, with the paper's instruction: the perception itself.

The agent's `extract` tool (agent/extract_tool.py) and VET's teacher (tools/vet/teacher.py) both look
through this one function, so a training pair is prepared exactly as an inference call is: the same
instruction, the same crop from the original pixels, the same aspect fit and the same cache key.
Bump agent/prompts.py's PROMPTS_VERSION whenever the instruction here changes: eval records store it.
"""

from __future__ import annotations

from dataclasses import dataclass

from tools.backends.base import Cancelled, Perceiver, PerceiveRequest
from tools.backends.http_client import EndpointError
from tools.backends.loading import ModelLoadError
from tools.images.pixels import ImageStore, crop_region, fit_aspect

GENERIC_INSTRUCTION = (
    "Describe the fine-grained content of the image, including scenes, objects, relationships, "
    "instance location, and any text present."
)


def extraction_instruction(request: str | None) -> str:
    """The perceiver's instruction: the generic one, plus `Especially, pay attention to <request>.`"""
    if not request or not request.strip():
        return GENERIC_INSTRUCTION
    focus = request.strip().rstrip(".").strip()
    return f"{GENERIC_INSTRUCTION} Especially, pay attention to {focus}."


@dataclass(frozen=True)
class Perception:
    """What the perceiver said about an image (or region) when asked with `instruction`, and its cost."""

    instruction: str
    text: str
    prompt_tokens: int
    output_tokens: int
    seconds: float
    cached_tokens: int


def perceive(perceiver: Perceiver, store: ImageStore, image_id: str, request: str | None,
             region: list[float] | tuple[float, ...] | None = None, max_new_tokens: int = 1024) -> Perception:
    """One perceiver call on one original image, or on a region of it in its normalised coordinates."""
    image = store.get(image_id)
    if region is not None:
        image = crop_region(image, tuple(region))
    instruction = extraction_instruction(request)
    key = store.ref(image_id).fingerprint
    key = key if region is None else f"{key}@{','.join(f'{v:.4f}' for v in region)}"
    request_ = PerceiveRequest(images=(fit_aspect(image),), instruction=instruction, image_key=key,
                               max_new_tokens=max_new_tokens)
    out = perceiver.perceive([request_])[0]
    return Perception(instruction, out.text, out.prompt_tokens, out.output_tokens, out.seconds, out.cached_tokens)


def is_model_failure(exc: BaseException) -> bool:
    """Whether an error is the model's own (it would fail any request): out of memory, a server gone or
    broken after its retries, a model that cannot load; a cancelled run ends too. A server's 4xx answer is
    about this one request."""
    if isinstance(exc, Cancelled):
        return True
    if isinstance(exc, EndpointError):
        return not (exc.status is not None and 400 <= exc.status < 500 and exc.status not in (408, 429))
    if isinstance(exc, (MemoryError, ModelLoadError)):
        return True
    return type(exc).__name__ == "OutOfMemoryError"  # torch.OutOfMemoryError, without importing torch here
