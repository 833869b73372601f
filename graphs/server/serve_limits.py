"""The limits a public endpoint sets per client, as plain data: the one home of their defaults.

Kept free of the web framework so `xthink serve`'s flags take their defaults from here without importing it;
graphs/server/limits.py enforces them.
"""

from __future__ import annotations

from dataclasses import dataclass

from agent.setting_caps import SettingCaps


@dataclass(frozen=True)
class ServeLimits:
    max_body_bytes: int = 32 * 1024 * 1024
    max_images: int = 8
    max_pixels: int = 25_000_000
    max_concurrent: int = 4
    timeout_s: float = 600.0
    max_queue: int = 16  # requests waiting for a slot (beyond them: 429 at once)
    queue_timeout_s: float = 30.0  # the longest a request waits for a slot (then: 429)
    retry_after_s: int = 2  # the Retry-After of a 429
    # Per-request compute a client may ask for (a larger value is a 400 naming the cap); the same caps as a
    # LangGraph run's context. `xthink serve` passes SettingCaps.from_env() (the XTHINK_*_CAP variables).
    caps: SettingCaps = SettingCaps()
