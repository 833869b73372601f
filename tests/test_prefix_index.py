"""The block trie finds what a scan over every stored sequence finds (tools/backends/prefix_index.py)."""

from __future__ import annotations

import random

from tools.backends.prefix_index import PrefixIndex


def shared(a, b) -> int:
    n = 0
    for x, y in zip(a, b):
        if x != y:
            break
        n += 1
    return n


def test_index_agrees_with_a_scan_under_random_adds_and_removes():
    rng = random.Random(0)
    for _ in range(200):
        index, stored = PrefixIndex(), {}
        base = [rng.randrange(4) for _ in range(rng.randrange(60))]  # a small vocabulary: long shared runs
        for step in range(40):
            ns = rng.choice("ab")
            ids = base[: rng.randrange(len(base) + 1)] + [rng.randrange(4) for _ in range(rng.randrange(40))]
            mine = {k: s for k, (n, s) in stored.items() if n == ns}
            if rng.random() < 0.5:
                prefixes = [k for k, s in mine.items() if len(s) <= len(ids) and tuple(ids[: len(s)]) == s]
                assert sorted(index.prefixes_of(ns, ids)) == sorted(prefixes)
                stored[step] = (ns, tuple(ids))
                index.add(ns, step, ids)
            elif rng.random() < 0.4 and stored:
                key = rng.choice(list(stored))
                index.remove(stored.pop(key)[0], key)
            else:
                found = index.longest(ns, ids)
                assert all(n == shared(mine[k], ids) for k, n in found)
                assert max((n for _, n in found), default=0) == max((shared(s, ids) for s in mine.values()), default=0)
            assert index.has(ns) == bool({k for k, (n, _) in stored.items() if n == ns})
