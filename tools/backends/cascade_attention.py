"""Decode attention that reads a batch's shared prompt prefix once for all its rows (cascade attention).

Why: every prompt of an eval batch starts with the same system prompt (the reasoner's instructions and tool
schema), and each row of the batched KV cache holds its own copy of it. At a decode step SDPA then reads
that prefix once per row: on the tiny reasoner at 15 rows x 1,000 positions, attention was half of the decode
forward pass, and it is memory bound. Here the step's attention is split in two and merged with the
log-sum-exp rule: every row's queries against one row's prefix keys in one matrix product (the prefix read
once), and each row against its own positions after the prefix; the result is the same softmax attention.

The engine says where the prefix is (`shared_prefix`, around its `generate`); the attention function
(registered by tools/backends/decode_mask.py) takes this path only at a decode step of that batch on the CPU
(on CUDA the fused SDPA kernels are left as they are: not measured there) and otherwise calls transformers'
SDPA unchanged.
"""

from __future__ import annotations

import contextlib
import functools
from contextvars import ContextVar
from dataclasses import dataclass, field

import torch

# The split costs a fixed ~0.1 ms per layer-step on a CPU core and saves reading (rows - 1) copies of the prefix:
# measured on the tiny reasoner, it pays from about 5,000 saved positions (8 rows x 900 saved 18%, 16 x 300 lost 9%).
MIN_SAVED = 6000


@dataclass
class Cascade:
    """Where the shared prefix lies in a left-padded batch: row i's prefix is positions [pads[i], pads[i] + length)."""

    pads: torch.Tensor  # (rows,) each row's left padding
    length: int  # prefix tokens every row shares
    source: int  # a row with the least padding: its copy of the prefix is the one read
    _step_key: tuple | None = field(default=None, repr=False)  # (mask, kv length, dtype) of the last step's mask
    _step_mask: torch.Tensor | None = field(default=None, repr=False)

    @property
    def rest(self) -> int:
        """The first position past every row's prefix: where each row's own positions are read from."""
        return int(self.pads[self.source]) + self.length

    def own_mask(self, attention_mask, kv_length: int, dtype) -> torch.Tensor:
        """Additive mask of positions [rest, kv_length) per row: 0 where the row reads, -inf on its padding and
        on positions another row's prefix covers. Built once per step (every layer gets the same mask object)."""
        key = (attention_mask, kv_length, dtype)
        if self._step_key is not None and self._step_key[0] is attention_mask and self._step_key[1:] == key[1:]:
            return self._step_mask
        positions = torch.arange(self.rest, kv_length, device=self.pads.device)
        own = (positions >= (self.pads + self.length)[:, None])[:, None, None, :]
        if attention_mask is not None:
            own = own & attention_mask[..., self.rest :].to(own.device)
        self._step_key = key
        self._step_mask = torch.zeros(own.shape, dtype=dtype).masked_fill_(~own, float("-inf"))
        return self._step_mask


@functools.cache
def _flash():
    """CPU SDPA that also returns each query's log-sum-exp, which the merge needs (torch >= 2.3; None without it)."""
    return getattr(torch.ops.aten, "_scaled_dot_product_flash_attention_for_cpu", None)


_ACTIVE: ContextVar[Cascade | None] = ContextVar("xthink_cascade", default=None)


@contextlib.contextmanager
def shared_prefix(pads: list[int], length: int, device="cpu"):
    """Within the block, decode steps of this batch (rows left-padded by `pads`) read their first `length`
    prompt tokens' keys/values once; where that saves little (see MIN_SAVED), attention is left as it is."""
    if (len(pads) - 1) * length < MIN_SAVED or torch.device(device).type != "cpu":
        yield None
        return
    source = min(range(len(pads)), key=pads.__getitem__)
    token = _ACTIVE.set(Cascade(torch.tensor(pads), length, source))
    try:
        yield _ACTIVE.get()
    finally:
        _ACTIVE.reset(token)


def applies(query: torch.Tensor, key: torch.Tensor, attention_mask, kwargs: dict) -> Cascade | None:
    """The active cascade, when this call is a decode step of its batch (else None: plain SDPA)."""
    plan = _ACTIVE.get()
    if plan is None or _flash() is None or query.shape[2] != 1 or query.device.type != "cpu":
        return None
    if key.shape[0] != len(plan.pads) or key.shape[2] <= plan.rest or kwargs.get("sliding_window"):
        return None
    if attention_mask is not None and (attention_mask.dtype != torch.bool or attention_mask.shape[-1] != key.shape[2]):
        return None
    return plan


def cascade_attention(plan: Cascade, module, query, key, value, attention_mask, scaling: float):
    """Attention of one new query per row, as SDPA computes it, returned in the layout transformers expects
    ([rows, 1, heads, dim])."""
    rows, heads, _, dim = query.shape
    kv_heads = key.shape[1]
    groups = heads // kv_heads
    q = query.reshape(rows, kv_heads, groups, dim)  # query head h reads key/value head h // groups
    start, end = int(plan.pads[plan.source]), plan.rest
    flash = _flash()
    # The prefix: every row's queries of a key/value head as one sequence of queries against one copy of it.
    shared_q = q.transpose(0, 1).reshape(1, kv_heads, rows * groups, dim)
    out_p, lse_p = flash(shared_q, key[plan.source : plan.source + 1, :, start:end],
                         value[plan.source : plan.source + 1, :, start:end], 0.0, False, scale=scaling)  # fmt: skip
    out_p = out_p.view(kv_heads, rows, groups, dim).transpose(0, 1)
    lse_p = lse_p.view(kv_heads, rows, groups).transpose(0, 1)
    # Each row's own positions: the rest of its prompt, then the tokens generated so far (a row's group of
    # query heads as its queries, so no key is repeated per head).
    out_r, lse_r = flash(q, key[:, :, end:], value[:, :, end:], 0.0, False,
                         attn_mask=plan.own_mask(attention_mask, key.shape[2], query.dtype), scale=scaling)  # fmt: skip
    top = torch.maximum(lse_p, lse_r)
    w_p, w_r = torch.exp(lse_p - top), torch.exp(lse_r - top)
    out = (out_p * w_p[..., None] + out_r * w_r[..., None]) / (w_p + w_r)[..., None]
    return out.to(query.dtype).reshape(rows, 1, heads, dim), None  # the merge weights are float32
