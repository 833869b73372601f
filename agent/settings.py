"""Per-run settings as plain data: what the CLI, the Python API and a server's JSON `context` can set.

`AskOptions` holds the ask settings with the paper's defaults. `RunContext` adds the model strings and the
mode, and is the `context_schema` of every graph: LangGraph Server turns a run's JSON `context` into one
(keys it does not know are dropped against its JSON schema), so nothing a client sends has to be a Python
object. agent/context.py turns it into the live models.

Every numeric setting has one range (`RANGES`), checked when an AskOptions is made, so the CLI, the Python
API, `xthink serve` and a LangGraph run context all refuse the same values with the same words, before a bad
value can reach a batch shared with other runs. `SettingCaps` is the tighter limit a server operator sets on
what one client may ask for; serve and the LangGraph context apply the same one.
"""

from __future__ import annotations

import functools
import math
import re
import typing
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, fields

from pydantic import TypeAdapter, ValidationError

from agent.trace import MODES
from tools.backends.base import SamplingSettings
from tools.backends.thinking import DEFAULT_THINKING_BUDGET
from tools.images.pixels import DEFAULT_MAX_PIXELS

DEFAULT_MAX_EXTRACTIONS = 4
FIRST_LOOKS = ("none", "caption")
MAX_OPTIONS = 26

# The paper's pairs: (reasoner, perceiver). The perceivers are the authors' extraction checkpoints, converted
# from LLaVA-NeXT format into transformers format on first use (tools/backends/conversion_cache.py).
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


class SettingError(InputError):
    """One setting cannot be used. It keeps the field's name apart from the problem, so each edge names it in
    its own terms: a CLI flag, a context key, an OpenAI error's `param`."""

    def __init__(self, name: str, problem: str, what: str | None = None):
        super().__init__(f"{what} '{name}': {problem}" if what else f"{name} {problem}")
        self.field, self.problem = name, problem


@dataclass(frozen=True)
class Range:
    """The values a numeric setting may take. `above` makes `low` itself invalid (a temperature or top_p of 0
    is not sampling: greedy decoding is its own setting)."""

    low: float
    high: float
    integer: bool = True
    above: bool = False

    def problem(self, value) -> str | None:
        """Why `value` is not allowed, or None."""
        kind = "a whole number" if self.integer else "a number"
        if isinstance(value, bool) or not isinstance(value, int if self.integer else (int, float)):
            return f"must be {kind}, not {value!r}"[:160]
        inside = (value > self.low if self.above else value >= self.low) and value <= self.high
        if not inside or (isinstance(value, float) and not math.isfinite(value)):
            low = f"more than {number_text(self.low)}" if self.above else f"at least {number_text(self.low)}"
            return f"must be {kind} {low} and at most {number_text(self.high)}, not {value!r}"[:160]
        return None


def number_text(x: float) -> str:
    return f"{int(x):,}" if float(x).is_integer() and abs(x) >= 1e4 else f"{x:g}"


MOST = 2**31 - 1  # token counts, pixels: what an int32 tensor index and every model server can take
# One range per numeric setting. Sampling follows the OpenAI API (temperature up to 2, top_p up to 1: the HTTP
# backend sends them on); the seed is anything torch.Generator.manual_seed accepts (signed or unsigned 64-bit).
RANGES = {
    "max_extractions": Range(0, MOST),
    "seed": Range(-(2**63), 2**64 - 1),
    "thinking_budget": Range(2, MOST),
    "max_new_tokens": Range(1, MOST),
    "perceiver_max_new_tokens": Range(1, MOST),
    "max_pixels": Range(1, MOST),
    "temperature": Range(0, 2, integer=False, above=True),
    "top_p": Range(0, 1, integer=False, above=True),
}


@dataclass
class AskOptions:
    """Per-run knobs with the paper's defaults. Each field's `help` is what the CLI shows for its flag."""

    max_extractions: int = field(default=DEFAULT_MAX_EXTRACTIONS,
                                 metadata={"help": "extraction calls per question (iterative)"})
    thinking: bool = field(default=True, metadata={"help": "reasoner without thinking (the paper's settings)"})
    greedy: bool = field(default=False, metadata={"help": "greedy decoding instead of the paper's sampling"})
    seed: int | None = field(default=None, metadata={"help": "random seed for sampling"})
    thinking_budget: int | None = field(default=DEFAULT_THINKING_BUDGET,
                                        metadata={"help": "thinking tokens before </think>"})
    max_new_tokens: int | None = field(default=None, metadata={"help": "reasoner tokens per turn (default: the "
                                                                       "paper's, 5120 thinking, 1024 not)"})
    no_wait: bool = field(default=False, metadata={"help": "mask self-reflection words (NoWait)"})
    perceiver_max_new_tokens: int = field(default=1024, metadata={"help": "perceiver tokens per extraction"})
    max_pixels: int = field(default=DEFAULT_MAX_PIXELS, metadata={"help": "refuse larger images"})
    first_look: str = field(default="none", metadata={"help": "iterative: caption = a generic description of "
                                                              "each image before the first turn; none"})
    temperature: float | None = field(default=None, metadata={"help": "sampling temperature, more than 0 and at "
                                                                      "most 2 (default: the paper's, 0.6 / 0.7)"})
    top_p: float | None = field(default=None, metadata={"help": "nucleus sampling, more than 0 and at most 1 "
                                                                "(default: the paper's, 0.95 / 0.8)"})

    def __post_init__(self):
        if self.first_look not in FIRST_LOOKS:
            raise SettingError("first_look", f"must be one of {', '.join(FIRST_LOOKS)}, not {self.first_look!r}"[:160])
        check_ranges(self)

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


# A setting that is on by default is set from a switch that turns it off: the CLI's `--no-think`, lmms-eval's
# `no_think=true`. Field -> the switch's name; every surface that takes settings by name derives from here.
OFF_SWITCHES = {"thinking": "no_think"}


def setting_names(skip: tuple[str, ...] = (), switches: bool = False) -> tuple[str, ...]:
    """The AskOptions fields (minus `skip`), in their order; with `switches`, as the CLI and lmms-eval name
    them (OFF_SWITCHES), so a setting added to AskOptions reaches every surface."""
    return tuple(OFF_SWITCHES.get(f.name, f.name) if switches else f.name for f in fields(AskOptions)
                 if f.name not in skip)  # fmt: skip


def from_switches(values: dict) -> dict:
    """Named settings with each off switch (`no_think`) turned back into its field (`thinking`)."""
    values = dict(values)
    for field_name, switch in OFF_SWITCHES.items():
        if switch in values:
            values[field_name] = not values.pop(switch)
    return values


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


def check_ranges(options: AskOptions) -> None:
    """Refuse a numeric setting outside its range (RANGES), naming it; None means 'the default' and passes."""
    for name, allowed in RANGES.items():
        value = getattr(options, name)
        problem = None if value is None else allowed.problem(value)
        if problem:
            raise SettingError(name, problem)


def validated(cls, values: dict, what: str = "setting"):
    """`cls(**values)` type-checked by pydantic (dataclass construction checks nothing) and range-checked, or
    a SettingError that names the key: JSON from clients gets the same message wherever it enters."""
    _no_bool_swaps(cls, values, what)
    try:
        return _adapter(cls).validate_python(values)
    except ValidationError as exc:
        first = exc.errors()[0]
        cause = first.get("ctx", {}).get("error")
        if isinstance(cause, SettingError):  # raised by __post_init__, which pydantic wraps
            raise SettingError(cause.field, cause.problem, what) from None
        key = ".".join(str(p) for p in first["loc"])
        raise SettingError(key, first["msg"], what) from None


@functools.cache
def _adapter(cls) -> TypeAdapter:
    """One pydantic validator per settings class: building it takes milliseconds, and a server checks the
    settings of every request."""
    return TypeAdapter(cls)


@functools.cache
def _type_hints(cls) -> dict:
    return typing.get_type_hints(cls)


def _no_bool_swaps(cls, values: dict, what: str) -> None:
    """What pydantic's lax mode would coerce but a client never means: `true` as a count, `"yes"` or `1` as a
    flag. (Strict mode would refuse a dict for a dataclass altogether.)"""
    hints = _type_hints(cls)
    for name, value in values.items():
        kind = hints.get(name)
        if kind is bool and not isinstance(value, bool):
            raise SettingError(name, f"must be true or false, not {value!r:.40}", what)
        if kind is not bool and isinstance(value, bool) and {int, float} & {kind, *typing.get_args(kind)}:
            raise SettingError(name, f"must be a number, not {value!r}", what)


def checked(context: RunContext) -> RunContext:
    """Type- and range-check a context built from JSON."""
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
