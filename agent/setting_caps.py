"""The most compute one client's request may ask for on a shared server, set by the operator's XTHINK_*_CAP.

`xthink serve` (graphs/server/serve_limits.py) and a LangGraph Server run's context (agent/context.py) apply the
same caps; the ranges a value may take at all are agent/settings.py's RANGES.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, fields, replace

from agent.settings import RANGES, AskOptions, InputError, Range, SettingError, number_text
from tools.images.pixels import DEFAULT_MAX_PIXELS

CAP_ENV = "XTHINK_{}_CAP"  # XTHINK_MAX_EXTRACTIONS_CAP, ... : one variable per SettingCaps field


@dataclass(frozen=True)
class SettingCaps:
    """The most compute one client's request may ask for on a shared server: `xthink serve` and a LangGraph
    Server run's context apply the same caps. The operator sets each with its environment variable
    (XTHINK_MAX_EXTRACTIONS_CAP, XTHINK_MAX_NEW_TOKENS_CAP, XTHINK_THINKING_BUDGET_CAP,
    XTHINK_PERCEIVER_MAX_NEW_TOKENS_CAP, XTHINK_MAX_PIXELS_CAP)."""

    max_extractions: int = 16
    max_new_tokens: int = 16384
    thinking_budget: int = 16384
    perceiver_max_new_tokens: int = 4096
    max_pixels: int = DEFAULT_MAX_PIXELS

    @classmethod
    def from_env(cls) -> SettingCaps:
        """The defaults, each replaced by its variable where the operator set one."""
        values = {}
        for f in fields(cls):
            env = CAP_ENV.format(f.name.upper())
            raw = os.environ.get(env, "").strip()
            if raw:
                values[f.name] = _cap_value(env, raw, RANGES[f.name])
        return cls(**values)

    def apply(self, options: AskOptions, what: str | None = None):
        """`options` within the caps: a default over its cap is lowered to it (an operator may cap below the
        paper's values), a value the client chose over its cap is refused, naming it and the variable."""
        lowered = {}
        defaults = {f.name: f.default for f in fields(AskOptions)}
        for f in fields(self):
            chosen, most = getattr(options, f.name), getattr(self, f.name)
            value = chosen
            if chosen is None and f.name == "max_new_tokens":
                value = options.sampling().max_new_tokens  # unset: the paper's 5120 (thinking) or 1024
            if value is None or value <= most:
                continue
            if chosen is not None and chosen != defaults[f.name]:
                env = CAP_ENV.format(f.name.upper())
                raise SettingError(f.name, f"must be at most {most} on this server ({env}), not {value}", what)
            lowered[f.name] = most
        return replace(options, **lowered) if lowered else options


def _cap_value(env: str, raw: str, allowed: Range) -> int:
    """An operator's cap, read strictly: a typo in a limit must not silently lift it."""
    try:
        value = int(raw)
    except ValueError:
        value = None
    if value is None or allowed.problem(value):
        raise InputError(f"{env} must be a whole number from {number_text(allowed.low)} to {number_text(allowed.high)}, "
                         f"not {raw[:40]!r}")
    return value
