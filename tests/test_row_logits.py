"""Per-row logits processing in a batched generate: rows processed together score exactly as rows alone.

RowLogits hands rows with alike processors (the same thinking budget and NoWait, no sampler) to one call per
step. These tests drive it with the real processors over random scores at the steps where the budget acts, with
rows that leave the shared call (a reached limit, a forced prefix, an extra processor, a sampler) in between,
and compare every row with that row processed on its own.
"""

from __future__ import annotations

import pytest
import torch

from tools.backends.row_logits import RowLogits, RowSampler
from tools.backends.thinking import SuppressTokensProcessor, ThinkingBudgetProcessor

VOCAB, PROMPT, EOS, NEWLINE, CLOSE = 50, 6, 1, 2, 3


def processors(budget: int = 10, no_wait: bool = True) -> list:
    found = [ThinkingBudgetProcessor(budget, PROMPT, NEWLINE, CLOSE)]
    return found + [SuppressTokensProcessor([7, 8, 9])] if no_wait else found


class AddOne:
    """An extra processor (no share_key): its row is processed alone."""

    def __call__(self, input_ids, scores):
        return scores + 1.0


def alone(rows, samplers, limits, prefixes, input_ids, scores):
    """Each row through its own single-row RowLogits: the reference."""
    out = []
    for i in range(len(rows)):
        single = RowLogits(PROMPT, [rows[i]], [samplers[i]], [limits[i]], EOS, prefixes=[prefixes[i]])
        out.append(single(input_ids[i : i + 1].clone(), scores[i : i + 1].clone()))
    return torch.cat(out)


@pytest.mark.parametrize("step", [0, 8, 9, 10])  # before the boost, boosting, newline forced, close forced
def test_rows_processed_together_score_as_rows_alone(step):
    torch.manual_seed(step)
    rows = [processors(), processors(), [*processors(), AddOne()], processors(), processors(no_wait=False),
            processors(), processors(), processors()]  # fmt: skip
    samplers = [None] * len(rows)
    samplers[6] = RowSampler(0.7, 1.0, None, 5, "cpu")
    limits = [64] * len(rows)
    limits[3] = step  # reached its limit: forced to end, between two rows that share a call
    prefixes = [[] for _ in rows]
    prefixes[5] = [11] * (step + 1)  # still replaying: forced
    input_ids = torch.randint(10, VOCAB, (len(rows), PROMPT + step))
    if step:
        input_ids[1, PROMPT] = CLOSE  # row 1 closed its thinking: the budget leaves it alone
    scores = torch.randn(len(rows), VOCAB)
    expected = alone(rows, [None if s is None else RowSampler(0.7, 1.0, None, 5, "cpu") for s in samplers],
                     limits, prefixes, input_ids, scores)  # fmt: skip
    together = RowLogits(PROMPT, rows, samplers, limits, EOS, prefixes=prefixes)
    assert together.keys[0] is not None and together.keys[2] is None and together.keys[6] is None
    got = together(input_ids.clone(), scores.clone())
    assert torch.equal(got, expected)


def test_rows_with_different_budgets_do_not_share_a_call():
    rows = [processors(budget=10), processors(budget=20)]
    together = RowLogits(PROMPT, rows, [None, None], [64, 64], EOS)
    assert together.keys[0] != together.keys[1]
    input_ids = torch.randint(10, VOCAB, (2, PROMPT + 9))
    scores = torch.randn(2, VOCAB)
    got = together(input_ids.clone(), scores.clone())
    assert torch.equal(got, alone(rows, [None, None], [64, 64], [[], []], input_ids, scores))
    assert got[0].argmax() == CLOSE and got[1].argmax() != CLOSE  # row 0's budget is spent, row 1's is not


@pytest.mark.parametrize("step", [8, 10])
def test_a_contiguous_run_of_alike_rows_scores_as_rows_alone(step):
    torch.manual_seed(step)
    rows = [processors() for _ in range(4)]
    input_ids = torch.randint(10, VOCAB, (4, PROMPT + step))
    input_ids[1, PROMPT] = CLOSE  # only row 1 closed its thinking
    scores = torch.randn(4, VOCAB)
    got = RowLogits(PROMPT, rows, [None] * 4, [64] * 4, EOS)(input_ids.clone(), scores.clone())
    assert torch.equal(got, alone(rows, [None] * 4, [64] * 4, [[]] * 4, input_ids, scores))
