"""Reuse of computed attention keys/values: an LRU of token sequences' KV, bounded in megabytes.

Why: an iterative conversation only grows at its end, every sample of a run starts with the same system
prompt, and every extraction on one image starts with that image's tokens. Recomputing those prefixes
is most of the prefill work. An entry is one sequence's token ids and its per-layer (keys, values); a
lookup returns the entry sharing the longest common token prefix with a new prompt, as a fresh
`DynamicCache` made of views into the stored tensors (transformers' cache appends with `torch.cat`, so
the stored tensors are never written to). Entries live in namespaces: the perceiver uses one per image
content key, so two images whose placeholder tokens are identical never share keys/values.

The batching helpers build one left-padded cache from several rows' caches, and cut a row back out of
the batched cache `generate` returns, so rows that reached the model with different cached prefixes
still decode in one batch.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass

import torch

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
    ids: torch.Tensor  # 1-D long, on CPU
    layers: Layers
    nbytes: int


class PrefixCache:
    """Longest-common-prefix lookup over stored sequences, least recently used out first."""

    def __init__(self, max_mb: float):
        self.max_bytes = int(max_mb * 1024 * 1024)
        self.stats = CacheStats()
        self._entries: OrderedDict[tuple[str, int], _Entry] = OrderedDict()
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
            return any(key[0] == namespace for key in self._entries)

    def lookup(self, namespace: str, ids: list[int], min_prefix: int = 1):
        """(cache holding the first n tokens of `ids`, n), or (None, 0) when no entry shares >= min_prefix.

        n is at most len(ids) - 1: the last prompt token is always computed, since its logits start the
        generation.
        """
        if not self.enabled:
            return None, 0
        query = torch.tensor(ids, dtype=torch.long)
        best, best_n = None, 0
        with self._lock:
            for key, entry in self._entries.items():
                if key[0] == namespace:
                    n = common_prefix(entry.ids, query)
                    if n > best_n:
                        best, best_n = key, n
            best_n = min(best_n, len(ids) - 1)
            if best is None or best_n < max(min_prefix, 1):
                self.stats.misses += 1
                return None, 0
            self._entries.move_to_end(best)
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
        seq = torch.tensor(ids, dtype=torch.long)
        with self._lock:
            for key in [k for k, e in self._entries.items() if k[0] == namespace and _is_prefix(e.ids, seq)]:
                self._drop(key)
            self._next += 1
            self._entries[(namespace, self._next)] = _Entry(seq, layers, nbytes)
            self._bytes += nbytes
            while self._bytes > self.max_bytes:
                self._drop(next(iter(self._entries)))
                self.stats.evictions += 1

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
            self._bytes = 0

    def _drop(self, key) -> None:
        self._bytes -= self._entries.pop(key).nbytes


def common_prefix(a: torch.Tensor, b: torch.Tensor) -> int:
    """Number of leading tokens two id sequences share."""
    n = min(len(a), len(b))
    if n == 0:
        return 0
    diff = torch.nonzero(a[:n] != b[:n])
    return int(diff[0]) if len(diff) else n


def _is_prefix(a: torch.Tensor, b: torch.Tensor) -> bool:
    return len(a) <= len(b) and common_prefix(a, b) == len(a)


def to_dynamic_cache(layers: Layers):
    from transformers import DynamicCache

    cache = DynamicCache()
    for index, (keys, values) in enumerate(layers):
        cache.update(keys, values, index)
    return cache


def cache_layers(cache) -> Layers:
    """The (keys, values) of every layer of a transformers cache (empty for a cache not yet filled)."""
    return [(layer.keys, layer.values) for layer in cache.layers if getattr(layer, "is_initialized", True)]


def stack_left_padded(rows: list[Layers], length: int):
    """One batched cache of `length` positions from single-row caches, each left-padded with zeros.

    The padded positions are masked by the attention mask the caller passes to `generate`.
    """
    stacked: Layers = []
    for layer in range(len(rows[0])):
        keys = [_left_pad(row[layer][0], length) for row in rows]
        values = [_left_pad(row[layer][1], length) for row in rows]
        stacked.append((torch.cat(keys), torch.cat(values)))
    return to_dynamic_cache(stacked)


def _left_pad(tensor: torch.Tensor, length: int) -> torch.Tensor:
    missing = length - tensor.shape[2]
    return torch.nn.functional.pad(tensor, (0, 0, missing, 0)) if missing else tensor


def row_slice(cache, row: int, start: int, end: int) -> Layers:
    """Contiguous copies of one row's positions [start, end) of a batched cache, for storing."""
    return [(k[row : row + 1, :, start:end].clone(), v[row : row + 1, :, start:end].clone())
            for k, v in cache_layers(cache)]
