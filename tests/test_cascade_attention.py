"""Cascade attention: a batch's shared prefix read once, the same attention as transformers' SDPA.

Compared with `sdpa_attention_forward` on left-padded batches whose rows share a prefix (grouped-query heads,
padding, each row's own tail), and end to end through `generate` and the reasoner engine on the tiny reasoner:
the same tokens, with the cascade path counted as taken.
"""

from __future__ import annotations

import types

import pytest
import torch
from transformers import AutoModelForCausalLM
from transformers.integrations.sdpa_attention import sdpa_attention_forward

from tests.test_engine import CPU, GREEDY, QUESTIONS, reference_reason
from tools.backends import cascade_attention
from tools.backends.base import Message, ReasonRequest
from tools.backends.cascade_attention import MIN_SAVED, shared_prefix
from tools.backends.decode_mask import use_decode_step_mask
from tools.backends.hf_reasoner import TransformersReasoner
from tools.backends.reasoner_engine import shared_length

HEADS, KV_HEADS, DIM = 4, 2, 16
PREFIX = MIN_SAVED // 3  # just long enough with 4 rows


def batch(pads: list[int], prefix: int, width: int, generated: int):
    """Keys/values of a left-padded batch whose rows share their first `prefix` positions, and its mask."""
    torch.manual_seed(0)
    rows, length = len(pads), width + generated
    key, value = torch.randn(rows, KV_HEADS, length, DIM), torch.randn(rows, KV_HEADS, length, DIM)
    shared_k, shared_v = torch.randn(KV_HEADS, prefix, DIM), torch.randn(KV_HEADS, prefix, DIM)
    mask = torch.ones(rows, length, dtype=torch.bool)
    for i, pad in enumerate(pads):
        key[i, :, pad : pad + prefix], value[i, :, pad : pad + prefix] = shared_k, shared_v
        mask[i, :pad] = False
    return torch.randn(rows, HEADS, 1, DIM), key, value, mask[:, None, None, :]


def module():
    return types.SimpleNamespace(num_key_value_groups=HEADS // KV_HEADS, is_causal=True, training=False)


@pytest.mark.parametrize("pads", [[0, 3, 7, 1, 12], [2, 2, 5, 9], [0, 0, 0, 0]])
def test_it_computes_what_sdpa_computes(pads):
    query, key, value, mask = batch(pads, prefix=PREFIX + 5, width=PREFIX + 40, generated=6)
    expected, _ = sdpa_attention_forward(module(), query, key, value, mask, scaling=DIM**-0.5)
    with shared_prefix(pads, PREFIX + 5) as plan:
        assert cascade_attention.applies(query, key, mask, {}) is plan is not None
        got, _ = cascade_attention.cascade_attention(plan, module(), query, key, value, mask, DIM**-0.5)
    assert got.shape == expected.shape
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-5)


def test_it_keeps_a_bfloat16_models_dtype():
    pads = [0, 3, 7, 1]
    query, key, value, mask = (t.to(torch.bfloat16) if t.is_floating_point() else t
                               for t in batch(pads, prefix=PREFIX, width=PREFIX + 20, generated=2))  # fmt: skip
    expected, _ = sdpa_attention_forward(module(), query, key, value, mask, scaling=DIM**-0.5)
    with shared_prefix(pads, PREFIX) as plan:
        got, _ = cascade_attention.cascade_attention(plan, module(), query, key, value, mask, DIM**-0.5)
    assert got.dtype == torch.bfloat16
    torch.testing.assert_close(got, expected, rtol=2e-2, atol=2e-2)


def test_it_takes_no_mask_when_no_row_is_padded():
    pads = [0, 0, 0, 0]
    query, key, value, mask = batch(pads, prefix=PREFIX, width=PREFIX + 3, generated=1)
    expected, _ = sdpa_attention_forward(module(), query, key, value, None, scaling=DIM**-0.5)
    with shared_prefix(pads, PREFIX) as plan:
        got, _ = cascade_attention.cascade_attention(plan, module(), query, key, value, None, DIM**-0.5)
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-5)


def test_small_savings_prefills_and_other_batches_keep_sdpa():
    pads = [0, 1, 2, 3]
    query, key, value, mask = batch(pads, prefix=PREFIX, width=PREFIX + 8, generated=1)
    with shared_prefix(pads, PREFIX - 1) as plan:
        assert plan is None and cascade_attention.applies(query, key, mask, {}) is None
    with shared_prefix(pads[:3], PREFIX) as plan:  # as long, one row fewer
        assert plan is None
    with shared_prefix(pads, PREFIX) as plan:
        prefill = torch.randn(4, HEADS, 5, DIM)
        assert cascade_attention.applies(prefill, key, mask, {}) is None
        assert cascade_attention.applies(query[:3], key[:3], mask[:3], {}) is None  # another batch's shape
        assert cascade_attention.applies(query, key, mask, {"sliding_window": 64}) is None
    assert cascade_attention.applies(query, key, mask, {}) is None  # outside the block


@pytest.fixture
def counted(monkeypatch):
    """How often the cascade path ran (the real function still computes every call)."""
    calls = []
    real = cascade_attention.cascade_attention

    def counting(*args, **kwargs):
        calls.append(args[2].shape)
        return real(*args, **kwargs)

    monkeypatch.setattr(cascade_attention, "cascade_attention", counting)
    return calls


def test_generate_under_it_gives_the_tokens_of_sdpa(tiny, counted):
    plain = AutoModelForCausalLM.from_pretrained(str(tiny.reasoner)).eval()
    ours = AutoModelForCausalLM.from_pretrained(str(tiny.reasoner)).eval()
    assert use_decode_step_mask(ours)
    torch.manual_seed(1)
    prefix, rows, width = MIN_SAVED // 4 + 20, 5, MIN_SAVED // 4 + 60
    shared = torch.randint(5, 400, (prefix,))
    ids = torch.randint(5, 400, (rows, width))
    mask = torch.ones(rows, width, dtype=torch.long)
    pads = [0, 4, 9, 2, 15]
    for i, pad in enumerate(pads):
        ids[i, pad : pad + prefix], mask[i, :pad] = shared, 0
    kwargs = dict(input_ids=ids, attention_mask=mask, max_new_tokens=10, min_new_tokens=10, do_sample=False)
    with torch.inference_mode():
        expected = plain.generate(**kwargs)
        with shared_prefix(pads, prefix):
            got = ours.generate(**kwargs)
    assert torch.equal(got, expected)
    assert len(counted) == 9 * ours.config.num_hidden_layers  # every decode step after the prefill, every layer


def test_the_engine_decodes_a_batch_sharing_its_system_prompt_through_it(tiny, counted):
    """Five first turns behind one long system prompt (as an eval's samples are): one batch, decoded through the
    cascade path, every output equal to plain `generate` on its prompt alone."""
    reasoner = TransformersReasoner(str(tiny.reasoner), CPU)
    system = Message("system", "You are a careful visual assistant. " * 250)
    batch = [ReasonRequest(messages=(system, Message("user", q)), settings=GREEDY) for q in [*QUESTIONS, "Why?"]]
    tokenizer, _ = reasoner.load()
    prompts = [tokenizer(reasoner.render(r), add_special_tokens=False)["input_ids"] for r in batch]
    assert (len(batch) - 1) * shared_length(prompts) >= MIN_SAVED
    outs = reasoner.reason(batch)
    assert reasoner.engine.batcher.batch_sizes[-1] == 5 and counted, "the batch decoded without the cascade path"
    assert [o.raw for o in outs] == [reference_reason(reasoner, r) for r in batch]
