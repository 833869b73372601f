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
