"""The paper's decoding controls as transformers logits processors: the thinking budget and NoWait.

Thinking budget (method.md section 1): once a sequence has thought for more than 95% of the budget,
the logits of "\\n" and "</think>" are boosted (linearly, up to +BOOST_MAX over the last 5%); the
budget-1'th token is forced to "\\n" and the budget'th to "</think>", so a think block, its closing
tag included, never exceeds the budget. A row that has already closed its think block is left alone.

NoWait: every token whose text holds a self-reflection word as a whole word is masked, so "waiter"
stays allowed while " Wait" and "wait," do not.
"""

from __future__ import annotations

import re
from functools import lru_cache

import torch
from transformers import LogitsProcessor

BOOST_MAX = 10.0
REFLECTION_WORDS = (
    "wait", "alternatively", "hmm", "but", "however", "alternative", "another", "check", "double-check",
    "oh", "maybe", "verify", "other", "again", "now", "ah", "anyway", "anyhow",
)  # fmt: skip
_REFLECTION = re.compile(r"(?<![a-z])(" + "|".join(re.escape(w) for w in REFLECTION_WORDS) + r")(?![a-z])")


class ThinkingBudgetProcessor(LogitsProcessor):
    """Close the think block by `budget` generated tokens; see the module docstring for the schedule."""

    def __init__(self, budget: int, prompt_length: int, newline_id: int, end_think_id: int):
        if budget < 2:
            raise ValueError("the thinking budget must be at least 2 tokens")
        self.budget = budget
        self.prompt_length = prompt_length
        self.newline_id = newline_id
        self.end_think_id = end_think_id

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        generated = input_ids[:, self.prompt_length :]
        step = generated.shape[1]
        if step < int(self.budget * 0.95):
            return scores
        closed = (generated == self.end_think_id).any(dim=1)
        for row in torch.nonzero(~closed).flatten().tolist():
            if step >= self.budget - 1:
                self._force(scores, row, self.end_think_id)
            elif step == self.budget - 2:
                self._force(scores, row, self.newline_id)
            else:
                span = max(self.budget - int(self.budget * 0.95), 1)
                boost = BOOST_MAX * (step - int(self.budget * 0.95) + 1) / span
                scores[row, self.newline_id] += boost
                scores[row, self.end_think_id] += boost
        return scores

    @staticmethod
    def _force(scores: torch.FloatTensor, row: int, token_id: int) -> None:
        keep = scores[row, token_id].clone()
        scores[row, :] = float("-inf")
        scores[row, token_id] = keep if torch.isfinite(keep) else 0.0


class SuppressTokensProcessor(LogitsProcessor):
    """Mask a fixed set of token ids (used for NoWait)."""

    def __init__(self, token_ids: list[int]):
        self.token_ids = torch.tensor(sorted(set(token_ids)), dtype=torch.long)

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        if self.token_ids.numel():
            scores[:, self.token_ids.to(scores.device)] = float("-inf")
        return scores


def is_reflection_token(text: str) -> bool:
    return bool(_REFLECTION.search(text.lower()))


def reflection_token_ids(tokenizer) -> list[int]:
    """Ids of every token whose decoded text holds a reflection word (computed once per tokenizer)."""
    return list(_reflection_ids_cached(tokenizer))


@lru_cache(maxsize=8)
def _reflection_ids_cached(tokenizer) -> tuple[int, ...]:
    vocab_size = len(tokenizer)
    texts = tokenizer.batch_decode([[i] for i in range(vocab_size)], skip_special_tokens=False)
    return tuple(i for i, text in enumerate(texts) if is_reflection_token(text))


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

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        step = input_ids.shape[1] - self.prompt_length
        for i, processors in enumerate(self.rows):
            row_ids, row = input_ids[i : i + 1], scores[i : i + 1]
            cancel = self.cancels[i]
            if step >= self.limits[i] or (cancel is not None and cancel.is_set()):
                row = force(row, self.eos_id)
            elif step < len(self.prefixes[i]):
                row = force(row, self.prefixes[i][step])
            else:
                for processor in processors:
                    row = processor(row_ids, row)
                if self.samplers[i] is not None:
                    row = self.samplers[i](row)
            scores[i : i + 1] = row
        return scores


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
