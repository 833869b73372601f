"""The result of a run and its trace: the JSON schema users read, store and inspect.

A trace is an ordered list of steps. Each step is a reasoner turn (`kind: "reason"`) or a perceiver
call (`kind: "extract"`; the end-to-end `direct` regime records its one VLM call as an extract step
with purpose `direct`). `Result.model_json_schema()` is the documented schema; SCHEMA_VERSION changes
whenever a field changes meaning.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, Field

SCHEMA_VERSION = "2"
Mode = Literal["iterative", "extract", "caption", "direct"]
MODES: tuple[str, ...] = ("iterative", "extract", "caption", "direct")


class ToolCallRecord(BaseModel):
    id: str = ""
    name: str
    arguments: dict


class ReasonStep(BaseModel):
    """One reasoner generate call."""

    kind: Literal["reason"] = "reason"
    purpose: Literal["observe", "answer", "iterate"] = Field(
        description="observe: writes the extraction request; answer: the single-pass final answer; "
        "iterate: a turn of the iterative loop"
    )
    thinking: str = ""
    text: str = Field("", description="visible text, tool-call blocks removed")
    tool_calls: list[ToolCallRecord] = []
    tool_errors: list[str] = Field([], description="why each malformed <tool_call> block was rejected")
    prompt_tokens: int = 0
    thinking_tokens: int = 0
    output_tokens: int = 0
    seconds: float = 0.0
    finish_reason: Literal["stop", "length"] = "stop"
    cached_tokens: int = Field(0, description="prompt tokens whose keys/values were reused from an earlier call")


class ExtractStep(BaseModel):
    """One perceiver generate call (or a refused tool call, with `error` set and no output)."""

    kind: Literal["extract"] = "extract"
    purpose: Literal["extract", "caption", "direct", "look"] = Field(
        "extract", description="extract: a request; caption: the generic instruction (Caption+Think); direct: the "
        "end-to-end answer; look: the iterative regime's optional first look (--first-look caption)"
    )
    request: str | None = Field(None, description="what the reasoner asked to see; None for generic captions")
    instruction: str = Field("", description="the exact instruction sent to the perceiver")
    image_id: str | None = Field(None, description="the image the call named: image_N, or crop_N of an earlier call")
    region: list[float] | None = Field(
        None, description="normalised [x0, y0, x1, y1] zoom box within image_id, after repairs, if any"
    )
    source_image: str | None = Field(None, description="the original image whose pixels were cropped")
    source_region: list[float] | None = Field(
        None, description="the same box in source_image's coordinates (differs from region inside a crop)"
    )
    crop_id: str | None = Field(None, description="the id a later call may name to zoom into this call's crop")
    repairs: list[str] = Field([], description="how the written region was repaired (told to the reasoner)")
    output: str = ""
    prompt_tokens: int = 0
    output_tokens: int = 0
    seconds: float = 0.0
    cached_tokens: int = Field(0, description="prompt tokens (image tokens included) reused from an earlier call")
    error: str | None = None
    review: Literal["approved", "edited", "refused"] | None = Field(
        None, description="interrupt_before_extract: what the application decided before the call ran"
    )


Step = Annotated[ReasonStep | ExtractStep, Field(discriminator="kind")]


class ImageInfo(BaseModel):
    id: str
    path: str
    width: int
    height: int


class Result(BaseModel):
    """Everything a run produced. `answer` is None when the final output has no `Answer:` line."""

    schema_version: str = SCHEMA_VERSION
    mode: Mode
    question: str
    options: list[str] = []
    images: list[ImageInfo] = []
    answer: str | None = None
    answer_found: bool = False
    final_output: str = Field("", description="the raw final output (thinking included) the answer came from")
    steps: list[Step] = []
    extraction_calls: int = Field(0, description="perceiver calls that ran (refused tool calls excluded)")
    budget_spent: bool = Field(False, description="iterative: the reasoner used up its extraction calls")
    reasoner: str | None = None
    perceiver: str | None = None
    seconds: float = 0.0
