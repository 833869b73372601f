"""Per-row decoding inside one batched `generate`: each row keeps its own processors, sampler, limit and cancel.

Why: the in-process engines batch requests from many callers into one `generate` call, but each request has
its own settings (thinking budget, NoWait, forced decoding in tests, temperature, seed, token limit) and may be
cancelled on its own. `generate` itself runs greedy; RowLogits applies each row's processors and sampler to
that row's scores only, so a request's tokens never depend on which other requests shared its batch.
"""

from __future__ import annotations

import torch
from transformers import LogitsProcessor


class RowSampler:
    """Sampling of one batch row with its own settings and its own `torch.Generator`.

    Why not `generate(do_sample=True)`: that samples every row with one temperature and the global RNG,
    so a request's tokens would depend on which other requests shared its batch and on other threads'
    seeds. Here the row's token is drawn with its generator and forced; `generate` runs greedy.
    """

    def __init__(self, temperature: float, top_p: float, top_k: int | None, seed: int | None, device):
        import math
        import secrets

        if not (math.isfinite(temperature) and temperature >= 0):
            raise ValueError(f"temperature must be a finite number >= 0, not {temperature}")
        if not (0 < top_p <= 1):
            raise ValueError(f"top_p must be in (0, 1], not {top_p}")
        self.temperature = max(temperature, 1e-5)
        self.top_p = top_p
        self.top_k = top_k or None
        self.generator = torch.Generator(device=device)
        self.generator.manual_seed(seed if seed is not None else secrets.randbits(63))

    def __call__(self, scores: torch.FloatTensor) -> torch.FloatTensor:
        """scores: [1, vocab] -> the same row with every token but the drawn one at -inf."""
        logits = scores.float() / self.temperature
        if self.top_k is not None and self.top_k < logits.shape[-1]:
            kth = torch.topk(logits, self.top_k, dim=-1).values[..., -1:]
            logits = logits.masked_fill(logits < kth, float("-inf"))
        if self.top_p < 1.0:
            ordered, order = torch.sort(logits, descending=True, dim=-1)
            cumulative = torch.softmax(ordered, dim=-1).cumsum(dim=-1)
            drop = cumulative - torch.softmax(ordered, dim=-1) >= self.top_p  # keep the token that crosses top_p
            logits = logits.masked_fill(drop.scatter(-1, order, drop), float("-inf"))
        probs = torch.softmax(logits, dim=-1)
        token = torch.multinomial(probs, 1, generator=self.generator)
        forced = torch.full_like(scores, float("-inf"))
        forced.scatter_(-1, token, 0.0)
        return forced


class RowLogits(LogitsProcessor):
    """Per-row logits processing for a batched `generate`: each row keeps its own processors, token
    limit and sampler, so requests with different settings share one batch without affecting each other.

    `limits[i]`: the row's max_new_tokens; at that step it is forced to `eos_id` (the caller cuts the
    forced token off and reports finish_reason "length"). `cancels[i]`: the row's cancel token; once set,
    the row is forced to `eos_id` at the next step, so a cancelled request stops and its batch companions
    go on (the caller reports the row as Cancelled). `prefixes[i]`: tokens the row must start with (a
    retried row replays what it already streamed).
    """

    def __init__(self, prompt_length: int, rows: list[list], samplers: list[RowSampler | None],
                 limits: list[int], eos_id: int, cancels: list | None = None,
                 prefixes: list[list[int]] | None = None):  # fmt: skip
        self.prompt_length = prompt_length
        self.rows = rows
        self.samplers = samplers
        self.limits = limits
        self.eos_id = eos_id
        self.cancels = cancels or [None] * len(rows)
        self.prefixes = prefixes or [[] for _ in rows]
        self.keys = [_share_key(processors, sampler) for processors, sampler in zip(rows, samplers)]

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        """Every step, for every row: so a row with nothing to do costs no tensor operation (a batch of 16 rows
        would otherwise pay 16 slices and copies per token), and in-place processors are not copied back.
        Rows whose processors are alike (the same thinking budget and NoWait, no sampler, no extra processor:
        an eval's rows) are processed in one call per step, not one per row; each row's scores are the same
        either way, since those processors treat every row on its own."""
        step = input_ids.shape[1] - self.prompt_length
        shared: dict[tuple, list[int]] = {}
        for i, processors in enumerate(self.rows):
            cancel = self.cancels[i]
            if step >= self.limits[i] or (cancel is not None and cancel.is_set()):
                scores[i : i + 1] = force(scores[i : i + 1], self.eos_id)
            elif step < len(self.prefixes[i]):
                scores[i : i + 1] = force(scores[i : i + 1], self.prefixes[i][step])
            elif self.keys[i] is not None:
                shared.setdefault(self.keys[i], []).append(i)
            elif processors or self.samplers[i] is not None:
                self._own(i, input_ids, scores)
        for indices in shared.values():
            self._together(indices, input_ids, scores)
        return scores

    def _own(self, i: int, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> None:
        view = row = scores[i : i + 1]
        for processor in self.rows[i]:
            row = processor(input_ids[i : i + 1], row)
        if self.samplers[i] is not None:
            row = self.samplers[i](row)
        if row is not view:  # a processor that changes the scores in place returns them as it got them
            scores[i : i + 1] = row

    def _together(self, indices: list[int], input_ids: torch.LongTensor, scores: torch.FloatTensor) -> None:
        """The shared processors of rows `indices`, in one call (on a slice when the rows are contiguous)."""
        first, last = indices[0], indices[-1] + 1
        if last - first == len(indices):
            view = part = scores[first:last]
            for processor in self.rows[first]:
                part = processor(input_ids[first:last], part)
            if part is not view:
                scores[first:last] = part
            return
        index = torch.tensor(indices, device=scores.device)
        part = scores.index_select(0, index)
        for processor in self.rows[first]:
            part = processor(input_ids.index_select(0, index), part)
        scores.index_copy_(0, index, part)


def _share_key(processors: list, sampler) -> tuple | None:
    """What makes a row's processing shareable with other rows': every processor says how (`share_key`), and
    it has no sampler of its own; None for a row processed alone (a row with no processors has nothing to do)."""
    if sampler is not None or not processors:
        return None
    keys = [getattr(processor, "share_key", None) for processor in processors]
    return None if any(key is None for key in keys) else tuple(keys)


class CancelRows(LogitsProcessor):
    """Force `eos_id` on every row whose cancel token is set (for engines without per-row processing)."""

    def __init__(self, cancels: list, eos_id: int):
        self.cancels = cancels
        self.eos_id = eos_id

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        for i, cancel in enumerate(self.cancels):
            if cancel is not None and cancel.is_set():
                scores[i : i + 1] = force(scores[i : i + 1], self.eos_id)
        return scores


def force(row: torch.FloatTensor, token_id: int) -> torch.FloatTensor:
    """A row of scores where only `token_id` can be chosen."""
    forced = torch.full_like(row, float("-inf"))
    forced[:, token_id] = 0.0
    return forced
