"""The thinking budget and NoWait, the paper's two decoding controls, and how each backend enforces them.

Thinking budget (method.md section 1): a think block, its closing tag included, never runs past
`thinking_budget` generated tokens (DEFAULT_THINKING_BUDGET unless a run sets another; None turns it off).
How it is enforced depends on what a backend can reach:
- in process (transformers, `thinking_processors`): once a sequence has thought for more than 95% of the
  budget, the logits of "\\n" and "</think>" are boosted (linearly, up to +BOOST_MAX over the last 5%); the
  budget-1'th token is forced to "\\n" and the budget'th to "</think>". A row that has already closed its think
  block is left alone.
- over HTTP and on vLLM (no logits access): two phases. The first call generates at most the budget
  (`thinking_phase_tokens`); if it stopped there with tokens of the turn's allowance left
  (`tokens_after_thinking`), the think block is closed (`close_thinking`, CLOSE_THINK) and a second call
  continues the answer with those tokens. The soft boost needs logits access, so there the budget is a hard close.

NoWait: every token whose text holds a self-reflection word as a whole word is masked, so "waiter" stays
allowed while " Wait" and "wait," do not (`reflection_token_ids`): in process by SuppressTokensProcessor, on
vLLM by a logit bias (tools/backends/vllm_requests.py).

Nothing heavy is imported here at module level, so the HTTP backend reads the two-phase rules without torch:
the processors import torch when they run. They are plain callables with a transformers LogitsProcessor's
signature, which is all RowLogits (tools/backends/row_logits.py) and `generate` ask of them.
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import TYPE_CHECKING

from tools.backends.output_parsing import THINK_CLOSE

if TYPE_CHECKING:
    import torch

    from tools.backends.base import SamplingSettings

DEFAULT_THINKING_BUDGET = 4096  # the paper's: thinking tokens before </think>, in every backend and surface
CLOSE_THINK = "\n</think>\n\n"  # what the two-phase budget appends to a think block it cut short
BOOST_MAX = 10.0
REFLECTION_WORDS = (
    "wait", "alternatively", "hmm", "but", "however", "alternative", "another", "check", "double-check",
    "oh", "maybe", "verify", "other", "again", "now", "ah", "anyway", "anyhow",
)  # fmt: skip
_REFLECTION = re.compile(r"(?<![a-z])(" + "|".join(re.escape(w) for w in REFLECTION_WORDS) + r")(?![a-z])")


def thinking_budget_of(settings: SamplingSettings) -> int | None:
    """The budget a request's thinking is held to; None when it does not think or has no budget."""
    return settings.thinking_budget if settings.thinking and settings.thinking_budget else None


# --- two phases: HTTP and vLLM ----------------------------------------------------------------------


def thinking_phase_tokens(settings: SamplingSettings) -> int:
    """Tokens for the first call: the thinking budget when it applies, else the whole answer."""
    budget = thinking_budget_of(settings)
    return min(budget, settings.max_new_tokens) if budget else settings.max_new_tokens


def tokens_after_thinking(settings: SamplingSettings, finish: str, used: int) -> int:
    """Tokens for the second call; 0 when there is none: no budget, the first call ended on its own
    (finish "stop"), or it used the turn's whole allowance."""
    if thinking_budget_of(settings) is None or finish != "length":
        return 0
    return max(settings.max_new_tokens - used, 0)


def close_thinking(text: str) -> str:
    """A first call's text with its think block closed (CLOSE_THINK appended) when the budget cut it open."""
    return text if THINK_CLOSE in text else text + CLOSE_THINK


# --- in process: logits processors ------------------------------------------------------------------


def thinking_processors(tokenizer, settings: SamplingSettings, prompt_length: int) -> list:
    """The in-process enforcement of a request's budget and NoWait (for a tokenizer without `</think>`, no budget)."""
    processors: list = []
    budget = thinking_budget_of(settings)
    end_think = tokenizer.convert_tokens_to_ids(THINK_CLOSE)
    if budget and end_think is not None and end_think != tokenizer.unk_token_id:
        newline = tokenizer.encode("\n", add_special_tokens=False)[0]
        processors.append(ThinkingBudgetProcessor(budget, prompt_length, newline, end_think))
    if settings.no_wait:
        processors.append(SuppressTokensProcessor(reflection_token_ids(tokenizer)))
    return processors


class ThinkingBudgetProcessor:
    """Close the think block by `budget` generated tokens; see the module docstring for the schedule."""

    def __init__(self, budget: int, prompt_length: int, newline_id: int, end_think_id: int):
        if budget < 2:
            raise ValueError("the thinking budget must be at least 2 tokens")
        self.budget = budget
        self.prompt_length = prompt_length
        self.newline_id = newline_id
        self.end_think_id = end_think_id

    @property
    def share_key(self) -> tuple:
        """Rows whose processors have equal keys are processed in one call (tools/backends/row_logits.py)."""
        return ("budget", self.budget, self.prompt_length, self.newline_id, self.end_think_id)

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        import torch

        step = input_ids.shape[1] - self.prompt_length
        if step < int(self.budget * 0.95):
            return scores
        generated = input_ids[:, self.prompt_length :]
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
        import torch

        keep = scores[row, token_id].clone()
        scores[row, :] = float("-inf")
        scores[row, token_id] = keep if torch.isfinite(keep) else 0.0


class SuppressTokensProcessor:
    """Mask a fixed set of token ids (NoWait's reflection tokens)."""

    def __init__(self, token_ids: list[int]):
        import torch

        self.token_ids = torch.tensor(sorted(set(token_ids)), dtype=torch.long)
        self.share_key = ("suppress", *self.token_ids.tolist())

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        if self.token_ids.numel():
            scores[:, self.token_ids.to(scores.device)] = float("-inf")
        return scores


# --- NoWait's tokens --------------------------------------------------------------------------------


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
