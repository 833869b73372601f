"""Reuse of computed attention keys/values: an LRU of token sequences' KV, bounded in megabytes.

Why: an iterative conversation only grows at its end, every sample of a run starts with the same system
prompt, and every extraction on one image starts with that image's tokens. Recomputing those prefixes
is most of the prefill work. An entry is one sequence's token ids and its per-layer (keys, values); a
lookup returns the entry sharing the longest common token prefix with a new prompt, as a fresh
`DynamicCache` made of views into the stored tensors (transformers' cache appends with `torch.cat`, so
the stored tensors are never written to). Entries live in namespaces: the perceiver uses one per image
content key, so two images whose placeholder tokens are identical never share keys/values. Finding that entry
is a walk down a trie of token blocks (tools/backends/prefix_index.py), not a comparison with every entry.

The batching helpers build one left-padded cache from several rows' caches, and cut a row back out of
the batched cache `generate` returns, so rows that reached the model with different cached prefixes
still decode in one batch.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass

import torch

from tools.backends.prefix_index import PrefixIndex

Layers = list[tuple[torch.Tensor, torch.Tensor]]  # per layer: keys and values, [1, heads, tokens, dim]


@dataclass
class CacheStats:
    """Counters a benchmark or a trace can read: what was reused and what had to be computed."""

    hits: int = 0
    misses: int = 0
    reused_tokens: int = 0
    computed_tokens: int = 0
    evictions: int = 0


@dataclass
class _Entry:
    layers: Layers
    nbytes: int
    used: int  # when it was stored or last looked up: the LRU order, which also breaks ties between entries


class PrefixCache:
    """Longest-common-prefix lookup over stored sequences, least recently used out first."""

    def __init__(self, max_mb: float):
        self.max_bytes = int(max_mb * 1024 * 1024)
        self.stats = CacheStats()
        self._entries: OrderedDict[tuple[str, int], _Entry] = OrderedDict()
        self._index = PrefixIndex()
        self._bytes = 0
        self._next = 0
        self._lock = threading.Lock()

    @property
    def enabled(self) -> bool:
        return self.max_bytes > 0

    @property
    def nbytes(self) -> int:
        return self._bytes

    def __len__(self) -> int:
        return len(self._entries)

    def knows(self, namespace: str) -> bool:
        """Whether any entry is stored under `namespace` (a cheap test before tokenising for a lookup)."""
        with self._lock:
            return self._index.has(namespace)

    def lookup(self, namespace: str, ids: list[int], min_prefix: int = 1):
        """(cache holding the first n tokens of `ids`, n), or (None, 0) when no entry shares >= min_prefix.

        n is at most len(ids) - 1: the last prompt token is always computed, since its logits start the
        generation.
        """
        if not self.enabled:
            return None, 0
        with self._lock:
            # The longest shared prefix; between equals the least recently used (the order a scan of the LRU met them).
            shared = [(n, -self._entries[key].used, key) for key, n in self._index.longest(namespace, ids) if n > 0]
            best_n, _, best = max(shared, default=(0, 0, None))
            best_n = min(best_n, len(ids) - 1)
            if best is None or best_n < max(min_prefix, 1):
                self.stats.misses += 1
                return None, 0
            self._touch(best)
            layers = [(k[:, :, :best_n], v[:, :, :best_n]) for k, v in self._entries[best].layers]
            self.stats.hits += 1
        return to_dynamic_cache(layers), best_n

    def store(self, namespace: str, ids: list[int], layers: Layers) -> None:
        """Keep `layers` (already contiguous copies) as the KV of `ids`; drop entries it extends."""
        if not self.enabled or not ids:
            return
        nbytes = sum(k.numel() * k.element_size() + v.numel() * v.element_size() for k, v in layers)
        if nbytes > self.max_bytes:
            return
        with self._lock:
            for key in self._index.prefixes_of(namespace, ids):
                self._drop(key)
            self._next += 1
            key = (namespace, self._next)
            self._entries[key] = _Entry(layers, nbytes, self._next)
            self._index.add(namespace, key, ids)
            self._bytes += nbytes
            while self._bytes > self.max_bytes:
                self._drop(next(iter(self._entries)))
                self.stats.evictions += 1

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
            self._index = PrefixIndex()
            self._bytes = 0

    def _touch(self, key) -> None:
        self._next += 1
        self._entries[key].used = self._next
        self._entries.move_to_end(key)

    def _drop(self, key) -> None:
        self._bytes -= self._entries.pop(key).nbytes
        self._index.remove(key[0], key)


def to_dynamic_cache(layers: Layers, reserve: int | None = None):
    """A DynamicCache holding `layers`; with `reserve`, one whose layers have room for that many more positions
    and write each step in place (tools/backends/growing_cache.py)."""
    from transformers import DynamicCache

    from tools.backends.growing_cache import growing_cache

    cache = DynamicCache() if reserve is None else growing_cache(reserve)
    for index, (keys, values) in enumerate(layers):
        cache.update(keys, values, index)
    return cache


def cache_layers(cache) -> Layers:
    """The (keys, values) of every layer of a transformers cache (empty for a cache not yet filled)."""
    return [(layer.keys, layer.values) for layer in cache.layers if getattr(layer, "is_initialized", True)]


def shared_prefix_cache(layers: list[Layers], cached: list[int], lengths: list[int], width: int,
                        new_tokens: int | None = None):
    """One cache for the rows of a left-padded batch, and how many cached tokens each row keeps.

    Row i (a prompt of lengths[i] tokens, padded on the left to `width`) has keys/values for its first
    cached[i] tokens. The batched cache is as long as every row's cached prefix reaches in the padded layout
    (rows end together there, so their caches end close together too); each row keeps the part of its cache
    below that length and `generate` computes the rest, for all rows in one prefill. None when some row has
    nothing cached at the start of the layout. With `new_tokens` (the batch's token limit), the cache has room
    for the rest of the prompts and those tokens, written in place (tools/backends/growing_cache.py).
    """
    length = min(width - n + c for n, c in zip(lengths, cached))
    shaped = next((row for row in layers if row), None)
    if length <= 0 or shaped is None:
        return None, [0] * len(lengths)
    kept = [max(0, length - (width - n)) for n in lengths]
    empty = [(k[:, :, :0], v[:, :, :0]) for k, v in shaped]
    cut = [[(k[:, :, :m], v[:, :, :m]) for k, v in (row or empty)] for row, m in zip(layers, kept)]
    reserve = None if new_tokens is None else width - length + new_tokens + 1
    return stack_left_padded(cut, length, reserve), kept


def stack_left_padded(rows: list[Layers], length: int, reserve: int | None = None):
    """One batched cache of `length` positions from single-row caches, each left-padded with zeros.

    The padded positions are masked by the attention mask the caller passes to `generate`.
    """
    stacked: Layers = []
    for layer in range(len(rows[0])):
        keys = [_left_pad(row[layer][0], length) for row in rows]
        values = [_left_pad(row[layer][1], length) for row in rows]
        stacked.append((torch.cat(keys), torch.cat(values)))
    return to_dynamic_cache(stacked, reserve)


def _left_pad(tensor: torch.Tensor, length: int) -> torch.Tensor:
    missing = length - tensor.shape[2]
    return torch.nn.functional.pad(tensor, (0, 0, missing, 0)) if missing else tensor


def row_slice(cache, row: int, start: int, end: int) -> Layers:
    """Contiguous copies of one row's positions [start, end) of a batched cache, for storing."""
    return [(k[row : row + 1, :, start:end].clone(), v[row : row + 1, :, start:end].clone())
            for k, v in cache_layers(cache)]
