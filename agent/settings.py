"""Per-run settings as plain data: what the CLI, the Python API and a server's JSON `context` can set.

`AskOptions` holds the ask settings with the paper's defaults. `RunContext` adds the model strings and the
mode, and is the `context_schema` of every graph: LangGraph Server turns a run's JSON `context` into one
(keys it does not know are dropped against its JSON schema), so nothing a client sends has to be a Python
object. agent/context.py turns it into the live models.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import asdict, dataclass, fields

from pydantic import TypeAdapter, ValidationError

from agent.trace import MODES
from tools.backends.base import SamplingSettings
from tools.images import DEFAULT_MAX_PIXELS

DEFAULT_MAX_EXTRACTIONS = 4
FIRST_LOOKS = ("none", "caption")
MAX_OPTIONS = 26

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


class InputError(ValueError):
    """The question, options, mode or settings given by the user cannot be used; the message says why."""


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
    temperature: float | None = None  # None: the paper's value for the thinking mode
    top_p: float | None = None

    def __post_init__(self):
        if self.first_look not in FIRST_LOOKS:
            raise InputError(f"unknown first look '{self.first_look}'; choose one of {', '.join(FIRST_LOOKS)}")
        if isinstance(self.max_extractions, int) and self.max_extractions < 0:  # other types: see checked()
            raise InputError("max_extractions must be 0 or more")

    def as_dict(self) -> dict:
        """The settings as JSON; unset sampling overrides are left out, so records made before they existed
        keep their settings hash."""
        out = asdict(self)
        return {k: v for k, v in out.items() if not (k in ("temperature", "top_p") and v is None)}

    def sampling(self) -> SamplingSettings:
        overrides = {"greedy": self.greedy, "seed": self.seed, "no_wait": self.no_wait}
        overrides["thinking_budget"] = self.thinking_budget if self.thinking else None
        for name in ("max_new_tokens", "temperature", "top_p"):
            if getattr(self, name) is not None:
                overrides[name] = getattr(self, name)
        return SamplingSettings.paper(thinking=self.thinking, **overrides)


@dataclass
class RunContext(AskOptions):
    """A run's JSON context. Unset models come from XTHINK_REASONER / XTHINK_PERCEIVER, then the small pair."""

    reasoner: str | None = None
    perceiver: str | None = None
    device: str | None = None  # None: XTHINK_DEVICE, then auto
    mode: str | None = None  # the assistant graph's regime (default iterative); the regime graphs ignore it
    interrupt_before_extract: bool = False  # pause before each extraction for the application to decide
    stream_text: bool = True  # the reasoner's text on the `custom` stream as it is generated

    def ask_options(self) -> AskOptions:
        return AskOptions(**{f.name: getattr(self, f.name) for f in fields(AskOptions)})


def validated(cls, values: dict, what: str = "setting"):
    """`cls(**values)` type-checked by pydantic (dataclass construction checks nothing), or an InputError that
    names the key: JSON from clients gets the same message wherever it enters."""
    try:
        return TypeAdapter(cls).validate_python(values)
    except ValidationError as exc:
        first = exc.errors()[0]
        key = ".".join(str(p) for p in first["loc"])
        raise InputError(f"{what} '{key}': {first['msg']}") from None


def checked(context: RunContext) -> RunContext:
    """Type-check a context built from JSON."""
    return validated(RunContext, vars(context), "context key")


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
