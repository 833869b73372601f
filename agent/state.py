"""Graph state shared by every regime, and the runtime context that carries the loaded models.

State holds text, image ids/paths and the trace: never pixels, base64 or model objects, so any
checkpoint of it stays small. Models, the image store and settings travel in the runtime context.
Each field says which node writes it.
"""

from __future__ import annotations

import operator
from dataclasses import dataclass, field
from typing import Annotated

from typing_extensions import TypedDict  # pydantic (LangGraph Server's schemas) needs it before Python 3.12

from tools.backends.output_parsing import ToolCall, ToolCallError
from agent.settings import DEFAULT_MAX_EXTRACTIONS, AskOptions, check_ranges
from agent.trace import ImageInfo, Step
from tools.backends.base import Message, Perceiver, Reasoner, SamplingSettings
from agent.extract_tool import CropInfo
from tools.images.pixels import ImageStore


class AgentState(TypedDict, total=False):
    # Written by the caller.
    question: str
    options: list[str]
    images: list[ImageInfo]
    # Caller (precomputed) or the `observe` node: the "contents to observe" request.
    request: str | None
    # `start` and `reason`/`extract` nodes (iterative): the reasoner's chat history (kept across the turns
    # of a conversation, so a follow-up question sees every earlier extraction).
    history: Annotated[list[Message], operator.add]
    # Every node that calls a model appends its step.
    steps: Annotated[list[Step], operator.add]
    # `start` sets it to the budget; `extract` counts it down (refused calls count too).
    extractions_left: int
    # `start`: the image ids the reasoner has been told about (a follow-up lists only new ones).
    seen_images: list[str]
    # `start`: whether this turn pauses before each extraction (kept in state so a resumed run, whatever its
    # context, applies the application's decision).
    review_extractions: bool
    # `reason`: the last turn's tool calls, consumed by `extract`.
    pending_calls: list[ToolCall]
    pending_errors: list[ToolCallError]
    # `extract`: the crops of region calls, nameable as `image` by later calls (boxes only, no pixels).
    crops: Annotated[list[CropInfo], operator.add]
    # `extract`: set once the reasoner was told that calls made after the budget are refused.
    refused_after_budget: bool
    # `perceive`: the description(s) handed to the single-pass reasoner.
    description: str
    # The node that produced the final output (`reason`, `think` or `direct`).
    final_output: str
    final_text: str


@dataclass
class AgentContext:
    """Runtime objects for one run. The Python API passes one as LangGraph's `context`; a server passes JSON
    (agent/settings.py: RunContext) and agent/context.py builds one from it."""

    reasoner: Reasoner | None
    perceiver: Perceiver
    store: ImageStore
    settings: SamplingSettings = field(default_factory=SamplingSettings.paper)
    max_extractions: int = DEFAULT_MAX_EXTRACTIONS
    perceiver_max_new_tokens: int = AskOptions.perceiver_max_new_tokens  # one default, AskOptions'
    observe_max_new_tokens: int = 128
    first_look: str = "none"  # iterative: "caption" gives the reasoner a generic description before its first turn
    interrupt_before_extract: bool = False  # iterative: pause before each extraction (LangGraph `interrupt`)
    mode: str = "iterative"  # the assistant graph's regime
    # Hand the reasoner's text to LangGraph's `custom` stream as it is generated (agent/token_stream.py). Off for batch
    # work: a server backend then answers unstreamed, as an evaluation expects.
    stream_text: bool = False

    @classmethod
    def build(cls, reasoner: Reasoner | None, perceiver: Perceiver, options: AskOptions, **extra) -> AgentContext:
        """A run's context from its ask settings, with a fresh image store (the one place they are mapped).
        The ranges are checked again: a caller may have changed a field since the settings were made."""
        check_ranges(options)
        return cls(
            reasoner=reasoner, perceiver=perceiver, store=ImageStore(max_pixels=options.max_pixels),
            settings=options.sampling(), max_extractions=options.max_extractions,
            perceiver_max_new_tokens=options.perceiver_max_new_tokens, first_look=options.first_look, **extra,
        )  # fmt: skip
