"""The Python API: `ExtractThink(...).ask(...)` runs one regime on one question and returns a Result.

Backends are created when the object is (cheap) and load their models on first use, once per process.
`stream(...)` yields each trace step as its node finishes, then the Result, for live progress.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Sequence

from agent.nodes import answer_of
from agent.state import DEFAULT_MAX_EXTRACTIONS, AgentContext
from agent.trace import MODES, ExtractStep, ImageInfo, Result, Step
from graphs import iterative, single
from tools.backends.base import Perceiver, Reasoner, SamplingSettings
from tools.backends.factory import make_perceiver, make_reasoner
from tools.backends.loading import Placement
from tools.backends.options import EngineOptions
from tools.images import DEFAULT_MAX_PIXELS, ImageStore

# The paper's pairs: (reasoner, perceiver). The perceivers are the authors' extraction checkpoints, converted
# from LLaVA-NeXT format into transformers format on first use (tools/convert.py).
PAIRS = {
    "small": ("Qwen/Qwen3-1.7B", "markendo/llava-extract-qwen3-0.6B"),
    "large": ("Qwen/Qwen3-4B", "markendo/llava-extract-qwen3-1.7B"),
}
DEFAULT_REASONER, DEFAULT_PERCEIVER = PAIRS["small"]


def resolve_models(pair: str | None, reasoner: str | None, perceiver: str | None) -> tuple[str, str]:
    """--reasoner/--perceiver win over --pair, which wins over the default (small) pair."""
    if pair is not None and pair not in PAIRS:
        raise InputError(f"unknown pair '{pair}'; choose one of {', '.join(PAIRS)}")
    base_reasoner, base_perceiver = PAIRS[pair or "small"]
    return reasoner or base_reasoner, perceiver or base_perceiver
MAX_OPTIONS = 26
FIRST_LOOKS = ("none", "caption")


class InputError(ValueError):
    """The question, options or mode given by the user cannot be used; the message says why."""


@dataclass
class AskOptions:
    """Per-run knobs with the paper's defaults."""

    max_extractions: int = DEFAULT_MAX_EXTRACTIONS
    thinking: bool = True
    greedy: bool = False
    seed: int | None = None
    thinking_budget: int | None = 4096
    max_new_tokens: int | None = None
    no_wait: bool = False
    perceiver_max_new_tokens: int = 1024
    max_pixels: int = DEFAULT_MAX_PIXELS
    first_look: str = "none"  # iterative: "caption" = a generic description before the first turn

    def __post_init__(self):
        if self.first_look not in FIRST_LOOKS:
            raise InputError(f"unknown first look '{self.first_look}'; choose one of {', '.join(FIRST_LOOKS)}")

    def sampling(self) -> SamplingSettings:
        overrides = {"greedy": self.greedy, "seed": self.seed, "no_wait": self.no_wait}
        overrides["thinking_budget"] = self.thinking_budget if self.thinking else None
        if self.max_new_tokens is not None:
            overrides["max_new_tokens"] = self.max_new_tokens
        return SamplingSettings.paper(thinking=self.thinking, **overrides)


class ExtractThink:
    """A reasoner and a perceiver, and the four regimes over them."""

    def __init__(
        self,
        reasoner: str | Reasoner = DEFAULT_REASONER,
        perceiver: str | Perceiver = DEFAULT_PERCEIVER,
        device: str = "auto",
        dtype: str = "auto",
        engine: EngineOptions | None = None,
    ):
        """`engine` sets batching, KV-cache sizes, HTTP in-flight caps and vLLM memory shares."""
        placement = Placement(device=device, dtype=dtype)
        engine = engine or EngineOptions()
        self.reasoner = make_reasoner(reasoner, placement, engine) if isinstance(reasoner, str) else reasoner
        self.perceiver = make_perceiver(perceiver, placement, engine) if isinstance(perceiver, str) else perceiver

    def ask(self, question: str, images: Sequence[str | Path], options: Sequence[str] | None = None,
            mode: str = "iterative", request: str | None = None, settings: AskOptions | None = None) -> Result:
        """Run one regime to the end and return its Result."""
        result = None
        for event in self.stream(question, images, options, mode, request, settings):
            if isinstance(event, Result):
                result = event
        assert result is not None
        return result

    def stream(self, question: str, images: Sequence[str | Path], options: Sequence[str] | None = None,
               mode: str = "iterative", request: str | None = None,
               settings: AskOptions | None = None) -> Iterator[Step | Result]:
        """Yield each trace step as soon as its node finishes, then the Result."""
        settings = settings or AskOptions()
        question, opts = validate_question(question, options, mode)
        store = ImageStore(max_pixels=settings.max_pixels)
        refs = [store.add(path) for path in images] if images else []
        if not refs:
            raise InputError("no image was given: pass at least one image file")
        ctx = AgentContext(
            reasoner=self.reasoner,
            perceiver=self.perceiver,
            store=store,
            settings=settings.sampling(),
            max_extractions=settings.max_extractions,
            perceiver_max_new_tokens=settings.perceiver_max_new_tokens,
            first_look=settings.first_look,
        )
        infos = [ImageInfo(id=r.id, path=r.path, width=r.width, height=r.height) for r in refs]
        state = {"question": question, "options": opts, "images": infos, "steps": [], "messages": [],
                 "request": request if mode == "extract" else None}
        graph, limit = graph_for(mode, settings.max_extractions)
        self.prepare(mode)
        started = time.perf_counter()
        final: dict = {}
        for kind, chunk in graph.stream(state, context=ctx, config={"recursion_limit": limit},
                                        stream_mode=["updates", "values"]):
            if kind == "values":
                final = chunk
                continue
            for update in chunk.values():
                yield from (update or {}).get("steps", [])
        yield self._result(mode, question, opts, infos, final, time.perf_counter() - started)

    def prepare(self, mode: str) -> None:
        """Load the models a mode needs before it starts, so a bad model fails before any work is done."""
        if mode != "direct":
            self.reasoner.load()
        self.perceiver.load()

    def _result(self, mode, question, options, infos, final, seconds) -> Result:
        extracted = answer_of(final)
        steps = final.get("steps", [])
        calls = sum(1 for s in steps if isinstance(s, ExtractStep) and s.purpose != "direct" and s.error is None)
        return Result(
            mode=mode, question=question, options=options, images=infos,
            answer=extracted.answer, answer_found=extracted.found,
            final_output=final.get("final_output", ""), steps=steps, extraction_calls=calls,
            budget_spent=mode == "iterative" and bool(calls) and final.get("extractions_left", 1) == 0,
            reasoner=None if mode == "direct" else self.reasoner.name, perceiver=self.perceiver.name,
            seconds=seconds,
        )  # fmt: skip


def graph_for(mode: str, max_extractions: int):
    """The compiled graph of a mode and the recursion limit to run it with."""
    if mode == "iterative":
        return iterative.graph, iterative.recursion_limit(max_extractions)
    graphs = {"extract": single.extract_graph, "caption": single.caption_graph, "direct": single.direct_graph}
    return graphs[mode], single.SINGLE_PASS_RECURSION_LIMIT


_LETTER_PREFIX = re.compile(r"^\(?([A-Za-z])[\.\):]\s+")


def validate_question(question: str, options: Sequence[str] | None, mode: str) -> tuple[str, list[str]]:
    """Check the question, options and mode; strip 'A. ' prefixes when every option has them in order."""
    if mode not in MODES:
        raise InputError(f"unknown mode '{mode}'; choose one of {', '.join(MODES)}")
    if not isinstance(question, str) or not question.strip():
        raise InputError("the question is empty: pass the question text")
    opts = [str(o) for o in (options or [])]
    if not opts:
        return question.strip(), []
    if len(opts) == 1:
        raise InputError("only one option was given: pass at least two options, or none for an open question")
    if len(opts) > MAX_OPTIONS:
        raise InputError(f"{len(opts)} options were given; at most {MAX_OPTIONS} (A-Z) are supported")
    blank = [i + 1 for i, o in enumerate(opts) if not o.strip()]
    if blank:
        raise InputError(f"option {blank[0]} is empty: every option needs text")
    prefixes = [_LETTER_PREFIX.match(o.strip()) for o in opts]
    if all(prefixes) and [m.group(1).upper() for m in prefixes] == [chr(65 + i) for i in range(len(opts))]:
        opts = [o.strip()[m.end():] for o, m in zip(opts, prefixes)]
    opts = [o.strip() for o in opts]
    if len({o.lower() for o in opts}) != len(opts):
        raise InputError("two options have the same text: every option must be distinct")
    return question.strip(), opts
