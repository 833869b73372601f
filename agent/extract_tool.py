"""The `extract` tool as the reasoner calls it: its arguments checked, its region read, its trace step.

The reasoner never sees pixels. It says what it needs; this tool reads and repairs the region it names,
and tools/perception.py builds the paper's instruction ("Describe the fine-grained content ...
Especially, pay attention to <request>."), crops the region from the original pixels (so zooming adds
detail), runs the perceiver and returns its description with its cost. A region may name an earlier crop (`crop_N`): boxes compose, and the pixels
still come from the original image.

Nothing a reasoner writes may break a run: bad arguments come back as messages to correct, and a
failure inside the call (a processor refusing an image, a model error on one input) becomes the
call's error. Only a failure of the model itself (out of memory, a server gone after its retries)
propagates and ends the sample.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from pydantic import BaseModel, ConfigDict, ValidationError, field_validator

from agent.trace import ExtractStep
from tools.backends.base import Perceiver
from tools.backends.http_client import EndpointError
from tools.boxes import Box, BoxError, compose, read_box
from tools.images.pixels import ImageStore
from tools.perception import extraction_instruction, is_model_failure, perceive

MAX_REQUEST_CHARS = 500  # a request is a phrase; a page of text is a mistake, refused before the model sees it


class ExtractArgs(BaseModel):
    """Arguments of the `extract` tool as the reasoner sends them (the region is read later, with sizes)."""

    model_config = ConfigDict(extra="forbid")

    request: str
    region: object | None = None
    image: str | None = None

    @field_validator("request")
    @classmethod
    def _non_empty(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("request must say what to look at")
        if len(value) > MAX_REQUEST_CHARS:
            raise ValueError(f"request is {len(value)} characters; say what to look at in under {MAX_REQUEST_CHARS}")
        return value.strip()


class CropInfo(BaseModel):
    """A crop an earlier call made, nameable as `image` by later calls (state keeps boxes, never pixels)."""

    id: str
    source_image: str
    box: list[float]  # in source_image's normalised coordinates
    width: int  # size of the cropped area in original pixels
    height: int


@dataclass(frozen=True)
class Target:
    """Where a call looks: the image it named, and the same place in the original image."""

    image_id: str
    source_image: str
    region: Box | None = None
    source_region: Box | None = None
    repairs: list[str] = field(default_factory=list)


def validate_extract_args(arguments: dict, image_ids: list[str]) -> ExtractArgs | str:
    """Parsed arguments, or an error message written for the reasoner to correct its call."""
    try:
        args = ExtractArgs.model_validate(arguments)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'arguments'}: {e['msg']}" for e in exc.errors())
        return f"invalid arguments for extract ({problems[:400]})"
    if args.image is not None and args.image not in image_ids:
        return f"unknown image '{args.image[:60]}'; the images are {', '.join(image_ids)}"
    return args


def resolve_target(args: ExtractArgs, images: dict[str, tuple[int, int]], crops: dict[str, CropInfo]) -> Target | str:
    """The target of a valid call, its region read and repaired; or an error message for the reasoner."""
    named = args.image or next(iter(images))
    crop = crops.get(named)
    source = crop.source_image if crop else named
    size = (crop.width, crop.height) if crop else images[named]
    if args.region is None:
        whole = tuple(crop.box) if crop else None
        return Target(named, source, None, whole)  # type: ignore[arg-type]
    try:
        box = read_box(args.region, *size)
    except BoxError as exc:
        return f"{exc} (for example [0.25, 0.25, 0.75, 0.75] is the centre of the image)"
    in_source = compose(tuple(crop.box), box.box) if crop else box.box  # type: ignore[arg-type]
    return Target(named, source, box.box, in_source, box.repairs)


def run_extraction(
    perceiver: Perceiver,
    store: ImageStore,
    image_id: str,
    request: str | None,
    region: list[float] | tuple[float, ...] | None = None,
    purpose: str = "extract",
    max_new_tokens: int = 1024,
) -> ExtractStep:
    """One perceiver call on one original image (or a region of it, in its coordinates); the trace step."""
    seen = perceive(perceiver, store, image_id, request, region, max_new_tokens)
    box = _rounded(region)
    return ExtractStep(
        purpose=purpose, request=request, instruction=seen.instruction, image_id=image_id, region=box,
        source_image=image_id, source_region=box, output=seen.text, prompt_tokens=seen.prompt_tokens,
        output_tokens=seen.output_tokens, seconds=seen.seconds, cached_tokens=seen.cached_tokens,
    )  # fmt: skip


def extract_safely(perceiver: Perceiver, store: ImageStore, target: Target, request: str | None,
                   purpose: str = "extract", max_new_tokens: int = 1024) -> ExtractStep:
    """`run_extraction` on a target, where a failure of the call becomes the step's error."""
    region = list(target.region) if target.region else None
    try:
        step = run_extraction(perceiver, store, target.source_image, request, target.source_region,
                              purpose=purpose, max_new_tokens=max_new_tokens)  # fmt: skip
    except Exception as exc:  # noqa: BLE001 - the call's failure is the reasoner's information, not a crash
        if is_model_failure(exc):
            raise
        detail = exc.reason if isinstance(exc, EndpointError) else exc  # the endpoint's URL stays in the log
        message = " ".join(f"{type(exc).__name__}: {detail}".split())[:300]
        step = ExtractStep(purpose=purpose, request=request, instruction=extraction_instruction(request),
                           source_image=target.source_image, error=f"the perception tool failed ({message})")
    return step.model_copy(update={"image_id": target.image_id, "region": _rounded(region),
                                   "repairs": list(target.repairs)})


def _rounded(box) -> list[float] | None:
    return None if box is None else [round(v, 6) for v in box]
