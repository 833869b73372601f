"""The two model roles as small protocols, and the typed requests and outputs that cross them.

Each protocol holds only what every backend (transformers in process, an OpenAI-compatible server,
vLLM) can serve. Calls take a *list* of requests so a backend may later batch requests coming from
concurrent samples into one generate call; a perceiver request carries an `image_key` so a backend may
reuse one image's encoding across several extraction requests.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, runtime_checkable

from PIL import Image

from tools.backends.output_parsing import ToolCall, ToolCallError, split_output
from tools.backends.thinking import DEFAULT_THINKING_BUDGET

Role = Literal["system", "user", "assistant", "tool"]


class Cancelled(Exception):
    """The request's run was cancelled (its client went away or its time ran out): the backend stopped it."""


def check_cancel(cancel: threading.Event | None) -> None:
    """Raise Cancelled when the run that made a request is cancelled (a backend calls this before work)."""
    if cancel is not None and cancel.is_set():
        raise Cancelled("the run was cancelled")


@dataclass(frozen=True)
class Message:
    """One chat turn in the OpenAI/Qwen layout that chat templates render."""

    role: Role
    content: str
    tool_calls: tuple[ToolCall, ...] = ()
    reasoning: str = ""
    tool_call_id: str = ""

    def to_template(self) -> dict[str, Any]:
        out: dict[str, Any] = {"role": self.role, "content": self.content}
        if self.tool_calls:
            out["tool_calls"] = [
                {"id": c.id, "type": "function", "function": {"name": c.name, "arguments": c.arguments}}
                for c in self.tool_calls
            ]
        if self.reasoning:
            out["reasoning_content"] = self.reasoning
        if self.tool_call_id:
            out["tool_call_id"] = self.tool_call_id
        return out


@dataclass(frozen=True)
class SamplingSettings:
    """Decoding settings. The defaults are the paper's thinking-mode settings (method.md section 1)."""

    thinking: bool = True
    greedy: bool = False
    temperature: float = 0.6
    top_p: float = 0.95
    max_new_tokens: int = DEFAULT_THINKING_BUDGET + 1024  # the budget, then up to 1024 tokens of answer
    thinking_budget: int | None = DEFAULT_THINKING_BUDGET
    no_wait: bool = False
    seed: int | None = None

    @classmethod
    def paper(cls, thinking: bool = True, **overrides: Any) -> SamplingSettings:
        """The paper's settings for thinking (t=0.6, p=0.95, 5120 tokens) or not (t=0.7, p=0.8, 1024)."""
        base = cls() if thinking else cls(thinking=False, temperature=0.7, top_p=0.8, max_new_tokens=1024)
        return base.replace(**overrides) if overrides else base

    def replace(self, **changes: Any) -> SamplingSettings:
        from dataclasses import replace

        return replace(self, **changes)


@dataclass(frozen=True)
class ReasonRequest:
    messages: tuple[Message, ...]
    settings: SamplingSettings
    tools: tuple[dict, ...] = ()
    # Called with each piece of generated text as it is produced, where the backend can (transformers in
    # process); the output is the same either way.
    on_text: Callable[[str], None] | None = field(default=None, compare=False)
    # Set by whoever runs the request (a server whose client hung up, a deadline): a backend stops the request
    # as soon as it can (in process: at the next token) and raises Cancelled.
    cancel: threading.Event | None = field(default=None, compare=False)


@dataclass(frozen=True)
class ReasonOutput:
    """One reasoner turn: raw text as generated, and its parsed parts."""

    raw: str
    thinking: str
    text: str
    tool_calls: list[ToolCall] = field(default_factory=list)
    tool_errors: list[ToolCallError] = field(default_factory=list)
    prompt_tokens: int = 0
    thinking_tokens: int = 0
    output_tokens: int = 0
    seconds: float = 0.0
    finish_reason: Literal["stop", "length"] = "stop"
    cached_tokens: int = 0  # prompt tokens whose keys/values were reused, not computed

    @classmethod
    def from_raw(cls, raw: str, prompt_tokens: int, thinking_tokens: int, output_tokens: int, seconds: float,
                 finish: str, cached_tokens: int = 0) -> ReasonOutput:  # fmt: skip
        """Parse a turn's raw text into thinking, visible text and tool calls, the same way for every backend."""
        parts = split_output(raw)
        return cls(
            raw=raw, thinking=parts.thinking, text=parts.text, tool_calls=parts.tool_calls,
            tool_errors=parts.tool_errors, prompt_tokens=prompt_tokens, thinking_tokens=thinking_tokens,
            output_tokens=output_tokens, seconds=seconds, finish_reason="length" if finish == "length" else "stop",
            cached_tokens=cached_tokens,
        )  # fmt: skip


@dataclass(frozen=True)
class PerceiveRequest:
    """One perceiver call: images (already normalised RGB) and an instruction. Greedy, thinking off.

    `image_key` names the pixels (content hash, plus the region when cropped), never a per-run id, so a
    backend may reuse an image's encoding across requests and samples.
    """

    images: tuple[Image.Image, ...]
    instruction: str
    image_key: str = ""
    max_new_tokens: int = 1024
    cancel: threading.Event | None = field(default=None, compare=False)  # as ReasonRequest.cancel


@dataclass(frozen=True)
class PerceiveOutput:
    text: str
    prompt_tokens: int = 0
    output_tokens: int = 0
    seconds: float = 0.0
    cached_tokens: int = 0  # prompt tokens (the image's among them) reused from an earlier request


@runtime_checkable
class Reasoner(Protocol):
    """A text LLM that thinks, calls tools and answers."""

    name: str

    def load(self) -> object:
        """Make the model ready (weights, or a reachable server); raise ModelLoadError if it cannot be used."""
        ...

    def reason(self, requests: Sequence[ReasonRequest]) -> list[ReasonOutput]: ...


@runtime_checkable
class Perceiver(Protocol):
    """A vision-language model that describes images as instructed."""

    name: str

    def load(self) -> object:
        """Make the model ready (weights, or a reachable server); raise ModelLoadError if it cannot be used."""
        ...

    def perceive(self, requests: Sequence[PerceiveRequest]) -> list[PerceiveOutput]: ...
