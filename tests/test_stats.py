"""The paired bootstrap: exact point, the documented percentile convention, determinism, chunking, edge cases.

No timings here (they would flake on a busy machine); scripts/bench_report.py measures the speed.
"""

from __future__ import annotations

import random

import numpy as np
import pytest

import evals.stats as stats
from evals.stats import bootstrap_diff, mcnemar_exact


def make_pairs(only_a: int, only_b: int, both: int, neither: int, seed: int = 0) -> list[tuple[bool, bool]]:
    pairs = [(True, False)] * only_a + [(False, True)] * only_b + [(True, True)] * both + [(False, False)] * neither
    random.Random(seed).shuffle(pairs)
    return pairs


def reference(pairs: list[tuple[bool, bool]], seed: int, rounds: int) -> tuple[float, float, float]:
    """The same draws as the implementation, averaged one round at a time in plain Python."""
    diffs = [int(a) - int(b) for a, b in pairs]
    n = len(diffs)
    picks = np.random.default_rng(seed).integers(0, n, size=(rounds, n))
    means = sorted(sum(diffs[i] for i in row) / n for row in picks.tolist())
    return sum(diffs) / n, means[int(0.025 * rounds)], means[min(int(0.975 * rounds), rounds - 1)]


def test_matches_a_round_by_round_reference_with_the_documented_percentiles():
    pairs = make_pairs(9, 4, 20, 7)
    for rounds in (1, 39, 40, 200):
        assert bootstrap_diff(pairs, seed=3, rounds=rounds) == pytest.approx(reference(pairs, 3, rounds), abs=1e-12)


def test_deterministic_per_seed():
    pairs = make_pairs(30, 12, 40, 18)
    assert bootstrap_diff(pairs, seed=5) == bootstrap_diff(pairs, seed=5)
    others = {bootstrap_diff(pairs, seed=s)[1:] for s in range(6)}
    assert len(others) > 1, "the seed must change the resampling"


def test_point_estimate_is_exact():
    pairs = make_pairs(3, 1, 2, 1)
    assert bootstrap_diff(pairs)[0] == 2 / 7
    assert bootstrap_diff(make_pairs(1, 4, 0, 1))[0] == -3 / 6


def test_interval_contains_the_point_and_narrows_as_n_grows():
    widths = []
    for scale in (1, 10, 100):
        pairs = make_pairs(3 * scale, 1 * scale, 4 * scale, 2 * scale)
        point, low, high = bootstrap_diff(pairs, seed=1)
        assert point == pytest.approx(0.2)
        assert low < point < high
        widths.append(high - low)
    assert widths[0] > widths[1] > widths[2] > 0
    assert widths[0] / widths[2] == pytest.approx(10, rel=0.25), "width shrinks like 1/sqrt(n)"


@pytest.mark.parametrize("pair, diff", [((True, False), 1.0), ((False, True), -1.0), ((True, True), 0.0),
                                        ((False, False), 0.0)])
def test_all_equal_pairs_give_a_zero_width_interval_at_the_difference(pair, diff):
    assert bootstrap_diff([pair] * 37, seed=4) == (diff, diff, diff)


def test_empty_pairs():
    assert bootstrap_diff([]) == (0.0, 0.0, 0.0)


def test_chunking_never_changes_the_result(monkeypatch):
    """Memory is bounded by resampling in chunks; the chunk size (odd ones too) must not show in the result."""
    pairs = make_pairs(300, 251, 300, 148)  # n = 999
    whole = bootstrap_diff(pairs, seed=2, rounds=301)
    for rows in (1, 3, 7, 300):
        monkeypatch.setattr(stats, "CHUNK_CELLS", rows * len(pairs))
        assert bootstrap_diff(pairs, seed=2, rounds=301) == whole, rows


def test_mcnemar_exact():
    assert mcnemar_exact(0, 0) == 1.0
    assert mcnemar_exact(5, 0) == pytest.approx(2 / 32)
    assert mcnemar_exact(3, 3) == 1.0
