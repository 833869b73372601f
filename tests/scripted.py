"""Forced decoding for the tiny reasoner: real `generate` calls that emit scripted text.

This is how the tests get deterministic trajectories through the real generate -> parse -> tool ->
perceiver -> reasoner path: a logits processor masks every token but the next scripted one. Each
generate call takes the next script entry; the requests seen are kept so tests can check prompts.
"""

from __future__ import annotations

import torch
from transformers import LogitsProcessor


class ForceTokens(LogitsProcessor):
    """Allow only the next token of `ids` at each step (then end of turn)."""

    def __init__(self, ids: list[int], eos_id: int):
        self.ids = ids + [eos_id]
        self.prompt_len: int | None = None

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        if self.prompt_len is None:
            self.prompt_len = input_ids.shape[1]
        step = input_ids.shape[1] - self.prompt_len
        target = self.ids[min(step, len(self.ids) - 1)]
        forced = torch.full_like(scores, float("-inf"))
        forced[:, target] = 0.0
        return forced


class Script:
    """A factory for TransformersReasoner(extra_logits_processors=...): one scripted text per call."""

    def __init__(self, *texts: str):
        self.texts = list(texts)
        self.requests: list = []

    def __call__(self, request, tokenizer) -> list[LogitsProcessor]:
        self.requests.append(request)
        if not self.texts:
            raise AssertionError("the reasoner was called more often than the script has turns")
        ids = tokenizer.encode(self.texts.pop(0), add_special_tokens=False)
        return [ForceTokens(ids, tokenizer.convert_tokens_to_ids("<|im_end|>"))]


def tool_call(request: str, **extra) -> str:
    import json

    return "<tool_call>\n" + json.dumps({"name": "extract", "arguments": {"request": request, **extra}}) + "\n</tool_call>"


def think(text: str) -> str:
    return f"<think>\n{text}\n</think>\n\n"


class Constant:
    """A factory that makes every reasoner call emit the same text (thread-safe: no shared state)."""

    def __init__(self, text: str):
        self.text = text

    def __call__(self, request, tokenizer) -> list[LogitsProcessor]:
        ids = tokenizer.encode(self.text, add_special_tokens=False)
        return [ForceTokens(ids, tokenizer.convert_tokens_to_ids("<|im_end|>"))]
