"""What a perceiver's processor gives, as the engine uses it: which inputs carry pixels, how cached follow-ups
pad into one batch, and moving inputs onto the model's device and dtype."""

from __future__ import annotations

import torch

# Inputs that carry pixels (or describe pixel tensors): left out when the image is already in the cache.
PIXEL_INPUTS = ("pixel_values", "pixel_attention_mask", "image_sizes", "batch_num_images")
# The other inputs a hit may carry, and how a batch pads them: per token (left, with this value) or per image.
TOKEN_INPUTS = {"input_ids": None, "attention_mask": 0, "mm_token_type_ids": 0}  # None: the tokenizer's pad id
IMAGE_INPUTS = ("image_grid_thw",)


def pad_hit_inputs(inputs: list[dict], width: int, processor) -> dict:
    """Cached follow-ups' non-pixel inputs as one left-padded batch (what the processor would give for their ids)."""
    tokenizer = getattr(processor, "tokenizer", processor)
    batch = {}
    for key in inputs[0]:
        if key in TOKEN_INPUTS:
            fill = tokenizer.pad_token_id if TOKEN_INPUTS[key] is None else TOKEN_INPUTS[key]
            batch[key] = torch.cat([torch.nn.functional.pad(row[key], (width - row[key].shape[1], 0), value=fill)
                                    for row in inputs])  # fmt: skip
        elif key in IMAGE_INPUTS:
            batch[key] = torch.cat([row[key] for row in inputs])
    return batch


def to_device(inputs: dict, model) -> dict:
    out = {}
    for key, value in inputs.items():
        if isinstance(value, torch.Tensor):
            value = value.to(model.device)
            value = value.to(model.dtype) if value.is_floating_point() else value
        out[key] = value
    return out


def forget_positions(model) -> None:
    """Qwen-VL models keep the last prompt's rope offsets on the model; a new prompt must recompute them."""
    inner = getattr(model, "model", None)
    if inner is not None and hasattr(inner, "rope_deltas"):
        inner.rope_deltas = None
