"""The decode-step mask: the booleans transformers' `sdpa_mask` makes, taken from the padding mask directly.

Compared with `sdpa_mask` itself on left-padded batches, and end to end through `generate` on the tiny
reasoner (same tokens as transformers' SDPA).
"""

from __future__ import annotations

import torch
from transformers import AutoModelForCausalLM
from transformers.masking_utils import sdpa_mask, sliding_window_causal_mask_function

from tools.backends.decode_mask import NAME, decode_step_mask, use_decode_step_mask


def padded(rows: int, length: int) -> torch.Tensor:
    mask = torch.ones(rows, length, dtype=torch.long)
    for i in range(rows):
        mask[i, : 2 * i] = 0
    return mask


def test_a_padded_decode_step_gets_the_same_booleans_as_sdpa_mask():
    mask = padded(5, 30)
    got = decode_step_mask(5, 1, 30, q_offset=29, attention_mask=mask)
    expected = sdpa_mask(5, 1, 30, q_offset=29, attention_mask=mask)
    assert got.dtype == torch.bool and torch.equal(got.expand_as(expected), expected)


def test_every_other_case_is_sdpa_masks_own():
    mask = padded(5, 30)
    for args, kwargs in [((5, 4, 30), {"q_offset": 26}),  # a prefill of 4 tokens: causal inside it
                         ((5, 1, 30), {"q_offset": 29, "attention_mask": torch.ones(5, 30, dtype=torch.long)}),
                         ((1, 1, 30), {"q_offset": 29, "attention_mask": mask[4:]}),
                         ((5, 1, 30), {"q_offset": 29, "attention_mask": mask,
                                       "mask_function": sliding_window_causal_mask_function(8)})]:  # fmt: skip
        got, expected = decode_step_mask(*args, **kwargs), sdpa_mask(*args, **kwargs)
        assert (got is None and expected is None) or torch.equal(got, expected)


def test_generate_with_it_gives_the_tokens_of_sdpa(tiny):
    plain = AutoModelForCausalLM.from_pretrained(str(tiny.reasoner)).eval()
    ours = AutoModelForCausalLM.from_pretrained(str(tiny.reasoner)).eval()
    assert use_decode_step_mask(ours) and ours.config._attn_implementation == NAME
    torch.manual_seed(0)
    ids = torch.randint(5, 400, (6, 40))
    mask = padded(6, 40)
    with torch.inference_mode():
        a = plain.generate(input_ids=ids, attention_mask=mask, max_new_tokens=12, min_new_tokens=12, do_sample=False)
        b = ours.generate(input_ids=ids, attention_mask=mask, max_new_tokens=12, min_new_tokens=12, do_sample=False)
    assert torch.equal(a, b)
