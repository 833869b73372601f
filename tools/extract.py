"""The perception tool: turn a request in words (and optionally a region) into extracted details.

The reasoner never sees pixels. It says what it needs; this tool builds the paper's instruction
("Describe the fine-grained content ... Especially, pay attention to <request>."), crops and enlarges
the region when one is given, runs the perceiver and returns its description with its cost.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, ValidationError, field_validator

from agent.prompts import extraction_instruction
from agent.trace import ExtractStep
from tools.backends.base import PerceiveRequest, Perceiver
from tools.images import ImageStore, crop_region, validate_box


class ExtractArgs(BaseModel):
    """Arguments of the `extract` tool as the reasoner sends them."""

    model_config = ConfigDict(extra="forbid")

    request: str
    region: list[float] | None = None
    image: str | None = None

    @field_validator("request")
    @classmethod
    def _non_empty(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("request must say what to look at")
        return value.strip()

    @field_validator("region")
    @classmethod
    def _box(cls, value):
        return None if value is None else list(validate_box(value))


def validate_extract_args(arguments: dict, image_ids: list[str]) -> ExtractArgs | str:
    """Parsed arguments, or an error message written for the reasoner to correct its call."""
    try:
        args = ExtractArgs.model_validate(arguments)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'arguments'}: {e['msg']}" for e in exc.errors())
        return f"invalid arguments for extract ({problems})"
    if args.image is not None and args.image not in image_ids:
        return f"unknown image '{args.image}'; the images are {', '.join(image_ids)}"
    return args


def run_extraction(
    perceiver: Perceiver,
    store: ImageStore,
    image_id: str,
    request: str | None,
    region: list[float] | None = None,
    purpose: str = "extract",
    max_new_tokens: int = 1024,
) -> ExtractStep:
    """One perceiver call on one image (or a region of it); returns the trace step."""
    image = store.get(image_id)
    if region is not None:
        image = crop_region(image, tuple(region))
    instruction = extraction_instruction(request)
    key = store.ref(image_id).fingerprint
    key = key if region is None else f"{key}@{','.join(f'{v:.4f}' for v in region)}"
    out = perceiver.perceive(
        [PerceiveRequest(images=(image,), instruction=instruction, image_key=key, max_new_tokens=max_new_tokens)]
    )[0]
    return ExtractStep(
        purpose=purpose,
        request=request,
        instruction=instruction,
        image_id=image_id,
        region=region,
        output=out.text,
        prompt_tokens=out.prompt_tokens,
        output_tokens=out.output_tokens,
        seconds=out.seconds,
        cached_tokens=out.cached_tokens,
    )
