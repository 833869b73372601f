"""Forced decoding: a logits processor that lets a real model emit only a given text.

With random weights a tiny reasoner never calls a tool, so the selftest's demo (and the tests) steer it:
each generate call gets the next scripted text and every other token is masked. Everything else
(templates, generate, parsing, the tool, the perceiver) runs for real.
"""

from __future__ import annotations

import json
import threading

import torch
from transformers import LogitsProcessor


class ForceTokens(LogitsProcessor):
    """Allow only the next token of `ids` at each step (then the end-of-turn token)."""

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
    """A factory for TransformersReasoner(extra_logits_processors=...): one scripted text per call, in order."""

    def __init__(self, *texts: str):
        self.texts = list(texts)
        self.requests: list = []
        self._lock = threading.Lock()

    def __call__(self, request, tokenizer) -> list[LogitsProcessor]:
        with self._lock:
            self.requests.append(request)
            if not self.texts:
                raise AssertionError("the reasoner was called more often than the script has turns")
            text = self.texts.pop(0)
        ids = tokenizer.encode(text, add_special_tokens=False)
        return [ForceTokens(ids, tokenizer.convert_tokens_to_ids("<|im_end|>"))]


def tool_call(request: str, **extra) -> str:
    """A Hermes `<tool_call>` block calling `extract`, as Qwen3 writes it."""
    return "<tool_call>\n" + json.dumps({"name": "extract", "arguments": {"request": request, **extra}}) + "\n</tool_call>"


def think(text: str) -> str:
    return f"<think>\n{text}\n</think>\n\n"


class Constant:
    """A factory that makes every reasoner call emit the same text (thread-safe: no shared state)."""

    def __init__(self, text: str):
        self.text = text

    def __call__(self, request, tokenizer) -> list:
        ids = tokenizer.encode(self.text, add_special_tokens=False)
        return [ForceTokens(ids, tokenizer.convert_tokens_to_ids("<|im_end|>"))]
