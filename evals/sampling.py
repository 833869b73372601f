"""A seeded, stratified subsample, so that `--limit N` still covers every category."""

from __future__ import annotations

import random
from collections import defaultdict

from evals.benchmarks import Sample


def stratum(sample: Sample) -> str:
    """MMStar is stratified by sub-category (its average is over 18 of them), VMCBench by source dataset."""
    return sample.l2_category or sample.category


def subsample(samples: list[Sample], limit: int | None, seed: int) -> list[Sample]:
    """At most `limit` items; rows that are one question (HR-Bench's option cycles) count once and stay
    together, so every chosen question is scored over all of its cycles."""
    if limit is None or not any(s.group for s in samples):
        return _subsample(samples, limit, seed)
    heads: dict[str, Sample] = {}
    for sample in sorted(samples, key=lambda s: s.id):
        heads.setdefault(sample.group or sample.id, sample)
    chosen = {head.group or head.id for head in _subsample(list(heads.values()), limit, seed)}
    return [s for s in samples if (s.group or s.id) in chosen]


def _subsample(samples: list[Sample], limit: int | None, seed: int) -> list[Sample]:
    """At most `limit` samples: round-robin over shuffled strata, so each stratum gets a fair share.

    The choice depends only on the ids, the strata and the seed, so every regime (and every rerun) sees
    the same items. The result keeps the source order.
    """
    if limit is None or limit >= len(samples):
        return list(samples)
    rng = random.Random(seed)
    groups: dict[str, list[Sample]] = defaultdict(list)
    for sample in sorted(samples, key=lambda s: s.id):
        groups[stratum(sample)].append(sample)
    for group in groups.values():
        rng.shuffle(group)
    order = sorted(groups)
    rng.shuffle(order)
    chosen: set[str] = set()
    while len(chosen) < limit:
        for name in order:
            if groups[name] and len(chosen) < limit:
                chosen.add(groups[name].pop().id)
    return [s for s in samples if s.id in chosen]
