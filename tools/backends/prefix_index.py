"""Which stored token sequences share the longest prefix with a new one, without comparing it with every one.

Why: the KV cache (tools/backends/kv_cache.py) holds hundreds to thousands of sequences per namespace (every
sample of an eval run, every turn a server saw), and comparing a new prompt with each of them ran on the model's
worker thread: milliseconds per request at a hundred entries, tens at a few hundred, growing with the cache.
Here sequences are indexed in a trie of fixed-size token blocks: a lookup walks down the blocks it shares
with the stored sequences (one dict lookup per block) and compares token by token only within the next block,
against the sequences that got that far.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence

BLOCK = 16  # tokens per trie level


class _Node:
    __slots__ = ("children", "ending", "through")

    def __init__(self) -> None:
        self.children: dict[tuple[int, ...], _Node] = {}
        self.through: set[Hashable] = set()  # sequences whose first blocks lead here
        self.ending: set[Hashable] = set()  # of those, the ones with less than one more full block


class PrefixIndex:
    """Token sequences by key, in namespaces; keys are the caller's (unique across namespaces)."""

    def __init__(self) -> None:
        self._roots: dict[str, _Node] = {}
        self._ids: dict[Hashable, tuple[int, ...]] = {}

    def has(self, namespace: str) -> bool:
        root = self._roots.get(namespace)
        return root is not None and bool(root.through)

    def add(self, namespace: str, key: Hashable, ids: Sequence[int]) -> None:
        ids = tuple(ids)
        self._ids[key] = ids
        node = self._roots.setdefault(namespace, _Node())
        for depth in range(len(ids) // BLOCK):
            node.through.add(key)
            node = node.children.setdefault(ids[depth * BLOCK : (depth + 1) * BLOCK], _Node())
        node.through.add(key)
        node.ending.add(key)

    def remove(self, namespace: str, key: Hashable) -> None:
        ids = self._ids.pop(key)
        path = [self._roots[namespace]]
        for depth in range(len(ids) // BLOCK):
            path.append(path[-1].children[ids[depth * BLOCK : (depth + 1) * BLOCK]])
        path[-1].ending.discard(key)
        for depth in range(len(path) - 1, -1, -1):
            path[depth].through.discard(key)
            if depth and not path[depth].through:  # nothing passes here any more: prune the branch
                del path[depth - 1].children[ids[(depth - 1) * BLOCK : depth * BLOCK]]
        if not path[0].through:
            del self._roots[namespace]

    def longest(self, namespace: str, ids: Sequence[int]) -> list[tuple[Hashable, int]]:
        """(key, tokens shared with `ids`) of the stored sequences that may share the most: those that share as
        many full blocks as any, each with its exact count. The best of them shares the longest prefix of all."""
        node, depth = self._walk(namespace, ids)
        if node is None:
            return []
        start = depth * BLOCK
        return [(key, start + _shared(self._ids[key], ids, start)) for key in node.through]

    def prefixes_of(self, namespace: str, ids: Sequence[int]) -> list[Hashable]:
        """Keys of the stored sequences that are a prefix of `ids` (or equal to it)."""
        ids = tuple(ids)
        node = self._roots.get(namespace)
        found = []
        for depth in range(len(ids) // BLOCK + 1):
            if node is None:
                break
            found += [key for key in node.ending if ids[depth * BLOCK : len(self._ids[key])] ==
                      self._ids[key][depth * BLOCK :] and len(self._ids[key]) <= len(ids)]  # fmt: skip
            node = node.children.get(ids[depth * BLOCK : (depth + 1) * BLOCK])
        return found

    def _walk(self, namespace: str, ids: Sequence[int]) -> tuple[_Node | None, int]:
        """The deepest node whose blocks `ids` starts with, and its depth."""
        ids = tuple(ids)
        node = self._roots.get(namespace)
        depth = 0
        while node is not None and (depth + 1) * BLOCK <= len(ids):
            child = node.children.get(ids[depth * BLOCK : (depth + 1) * BLOCK])
            if child is None:
                break
            node, depth = child, depth + 1
        return node, depth


def _shared(a: Sequence[int], b: Sequence[int], start: int) -> int:
    """Tokens a and b share from `start` on, when they share everything before it and differ (or one ends)
    within the next block."""
    n = 0
    for x, y in zip(a[start : start + BLOCK], b[start : start + BLOCK]):
        if x != y:
            break
        n += 1
    return n
