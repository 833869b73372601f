"""Paired statistics between two regimes scored on the same items."""

from __future__ import annotations

import random
from math import comb


def mcnemar_exact(only_a: int, only_b: int) -> float:
    """Two-sided exact McNemar p-value from the discordant counts (binomial test at p = 0.5)."""
    n = only_a + only_b
    if n == 0:
        return 1.0
    k = min(only_a, only_b)
    tail = sum(comb(n, i) for i in range(k + 1)) / 2**n
    return min(1.0, 2 * tail)


def bootstrap_diff(pairs: list[tuple[bool, bool]], seed: int = 0, rounds: int = 2000) -> tuple[float, float, float]:
    """Accuracy difference (a - b) over paired items, with a percentile 95% bootstrap interval."""
    if not pairs:
        return 0.0, 0.0, 0.0
    n = len(pairs)
    diffs = [int(a) - int(b) for a, b in pairs]
    point = sum(diffs) / n
    rng = random.Random(seed)
    stats = sorted(sum(diffs[rng.randrange(n)] for _ in range(n)) / n for _ in range(rounds))
    low, high = stats[int(0.025 * rounds)], stats[min(int(0.975 * rounds), rounds - 1)]
    return point, low, high
