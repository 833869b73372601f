"""Training batches for a perceiver: the inference prompt, byte for byte, then the target; loss on the target.

The prompt is rendered by the very function the in-process perceiver uses at inference
(`render_perceiver_prompt`, tools/backends/chat_template.py) and processed by the model's own processor with
the same call, so the image tokens, their expansion and the `<think>\\n\\n</think>` of a thinking-off Qwen3
template are what the perceiver will see when `xthink ask --perceiver OUT` runs. The target's tokens follow
the prompt's, tokenized on their own (as generation produces them), then the template's end of the
assistant turn, so the model learns to stop. Labels are -100 on the prompt and on padding.

Rows are padded on the left, so every target ends at the right edge: the model then computes logits only for
the last `logits_to_keep` positions (the longest target plus one) and `labels` covers just those. Image
prompts are long (thousands of tokens at the real geometry) and targets short, so this keeps the
sequence x vocabulary logits (1.2 GB in float32 for 2,000 tokens of a 152K vocabulary) out of memory.
Positions are unaffected: Qwen-VL computes them from the attention mask, and rotary attention elsewhere
only sees relative positions.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from tools.backends.base import PerceiveRequest
from tools.backends.chat_template import render_perceiver_prompt

IGNORE = -100
SENTINEL = "\x00VET-TARGET\x00"


def turn_end(processor) -> str:
    """What the chat template writes after an assistant message's text (`<|im_end|>\\n` for Qwen)."""
    messages = [{"role": "user", "content": [{"type": "text", "text": "q"}]},
                {"role": "assistant", "content": [{"type": "text", "text": SENTINEL}]}]  # fmt: skip
    text = processor.apply_chat_template(messages, tokenize=False, enable_thinking=False)
    tokenizer = getattr(processor, "tokenizer", processor)
    end = text.split(SENTINEL, 1)[1] if SENTINEL in text else ""
    return end if end.strip() else tokenizer.eos_token


@dataclass
class VetCollator:
    """Turns rows {image, instruction, target} into a padded batch with the model's pixel inputs."""

    processor: object
    max_length: int | None = None  # cut the target (never the prompt: image tokens must stay whole)

    def __post_init__(self):
        self.tokenizer = getattr(self.processor, "tokenizer", self.processor)
        self.end = turn_end(self.processor)
        self.pad_id = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else 0

    def prompts(self, rows: list[dict]) -> list[str]:
        return [render_perceiver_prompt(self.processor, request(row)) for row in rows]

    def __call__(self, rows: list[dict]) -> dict:
        side, self.tokenizer.padding_side = self.tokenizer.padding_side, "left"
        try:
            inputs = dict(self.processor(images=[[row["image"].convert("RGB")] for row in rows],
                                         text=self.prompts(rows), return_tensors="pt", padding=True))  # fmt: skip
        finally:
            self.tokenizer.padding_side = side
        targets = [self.tokenizer(row["target"] + self.end, add_special_tokens=False)["input_ids"] for row in rows]
        return self._join(inputs, targets)

    def _join(self, inputs: dict, targets: list[list[int]]) -> dict:
        """Each row: left padding, its prompt tokens, its target; every per-token input re-padded to match."""
        lengths = inputs["attention_mask"].sum(dim=1).tolist()
        if self.max_length:
            targets = [t[: max(1, self.max_length - n)] for t, n in zip(targets, lengths)]
        old_width = inputs["input_ids"].shape[1]
        width = max(n + len(t) for n, t in zip(lengths, targets))
        keep = max(len(t) for t in targets) + 1
        per_token = [k for k, v in inputs.items()
                     if isinstance(v, torch.Tensor) and v.dim() == 2 and v.shape == inputs["input_ids"].shape]
        out = {k: v for k, v in inputs.items() if k not in per_token}
        for key in per_token:
            old = inputs[key]
            new = torch.full((len(targets), width), self.pad_id if key == "input_ids" else 0, dtype=old.dtype)
            for i, (n, target) in enumerate(zip(lengths, targets)):
                start = width - n - len(target)
                new[i, start : start + n] = old[i, old_width - n :]
                if key == "input_ids":
                    new[i, width - len(target) :] = torch.tensor(target, dtype=old.dtype)
                elif key == "attention_mask":
                    new[i, width - len(target) :] = 1
            out[key] = new
        labels = torch.full((len(targets), keep), IGNORE, dtype=torch.long)
        for i, target in enumerate(targets):
            labels[i, keep - len(target) :] = torch.tensor(target)
        out["labels"], out["logits_to_keep"] = labels, keep
        return out


def request(row: dict) -> PerceiveRequest:
    """The perceiver request a training row stands for: one image and the instruction."""
    return PerceiveRequest(images=(row["image"],), instruction=row["instruction"])
