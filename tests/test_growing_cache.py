"""The reasoner's KV cache writes each decode step in place: same tokens, no copy per step, nothing shared written.

Real tiny Qwen3 model; the reference is transformers' own DynamicCache on the same inputs.
"""

from __future__ import annotations

import pytest
import torch
from transformers import AutoConfig, AutoModelForCausalLM, DynamicCache

from tools.backends.growing_cache import GrowingLayer, growing_cache, supports_growing
from tools.backends.kv_cache import cache_layers, to_dynamic_cache


@pytest.fixture(scope="module")
def model(tiny):
    return AutoModelForCausalLM.from_pretrained(str(tiny.reasoner)).eval()


def greedy(model, cache, ids, mask, steps=12):
    """Decode `steps` tokens by hand (left-padded rows), returning them and the cache."""
    from tools.backends.compat import cache_kwargs

    tokens = []
    with torch.inference_mode():
        out = model(input_ids=ids, attention_mask=mask, use_cache=True, **cache_kwargs(cache))
        for _ in range(steps):
            token = out.logits[:, -1:].argmax(-1)
            tokens.append(token)
            mask = torch.cat([mask, torch.ones_like(token)], dim=1)
            out = model(input_ids=token, attention_mask=mask, use_cache=True, **cache_kwargs(cache))
    return torch.cat(tokens, dim=1), cache


def batch(rows=4, length=40):
    torch.manual_seed(0)
    ids = torch.randint(5, 400, (rows, length))
    mask = torch.ones_like(ids)
    for i in range(rows):
        mask[i, : 3 * i] = 0  # left padding of different widths
    return ids, mask


def test_growing_cache_decodes_the_same_tokens_and_keys_as_dynamic(model):
    ids, mask = batch()
    expected, plain = greedy(model, DynamicCache(), ids, mask)
    got, grown = greedy(model, growing_cache(16), ids, mask)
    assert torch.equal(got, expected)
    assert all(isinstance(layer, GrowingLayer) for layer in grown.layers)
    for (k1, v1), (k2, v2) in zip(cache_layers(plain), cache_layers(grown)):
        assert k1.shape == k2.shape and torch.equal(k1, k2) and torch.equal(v1, v2)


def test_steps_are_written_in_place_within_the_reserve(model):
    ids, mask = batch()
    _, cache = greedy(model, growing_cache(16), ids, mask, steps=1)
    buffer, length = cache.layers[0]._key_buffer, cache.layers[0].keys.shape[-2]
    with torch.inference_mode():
        for _ in range(10):  # ten more positions: within the 16 reserved, so no new buffer
            cache.update(torch.zeros(4, 2, 1, 16), torch.zeros(4, 2, 1, 16), 0)
        assert cache.layers[0]._key_buffer is buffer
        for _ in range(20):  # past the reserve: grows, keeping what it held
            cache.update(torch.ones(4, 2, 1, 16), torch.ones(4, 2, 1, 16), 0)
    keys = cache.layers[0].keys
    assert cache.layers[0]._key_buffer is not buffer and keys.shape[-2] == length + 30
    assert torch.equal(keys[:, :, length : length + 10], torch.zeros(4, 2, 10, 16))
    assert torch.equal(keys[:, :, -20:], torch.ones(4, 2, 20, 16))


def test_room_is_a_quarter_more_not_the_whole_token_limit(model):
    """A 4096-token limit must not make every row hold 4096 positions from its first step (on a GPU, gigabytes for
    rows that stop early): room grows by a quarter (64 positions at least), capped by the limit."""
    ids, mask = batch(length=400)
    _, cache = greedy(model, growing_cache(4096), ids, mask, steps=1)
    assert cache.layers[0]._key_buffer.shape[-2] == 400 + 100
    _, small = greedy(model, growing_cache(8), ids, mask, steps=1)
    assert small.layers[0]._key_buffer.shape[-2] == 400 + 8


def test_a_cache_built_from_stored_keys_never_writes_into_them(model):
    ids, mask = batch(rows=1)
    _, stored = greedy(model, DynamicCache(), ids, mask, steps=2)
    layers = [(k.clone(), v.clone()) for k, v in cache_layers(stored)]
    before = [(k.clone(), v.clone()) for k, v in layers]
    views = [(k[:, :, :30], v[:, :, :30]) for k, v in layers]  # a prefix, as the prefix cache hands out
    cache = to_dynamic_cache(views, reserve=8)
    with torch.inference_mode():
        for _ in range(12):
            cache.update(torch.full((1, 2, 1, 16), 7.0), torch.full((1, 2, 1, 16), 7.0), 0)
    for (k, v), (k0, v0) in zip(layers, before):
        assert torch.equal(k, k0) and torch.equal(v, v0)
    assert torch.equal(cache.layers[0].keys[:, :, :30], layers[0][0][:, :, :30])


def test_a_cropped_or_reselected_layer_is_taken_over_not_overwritten(model):
    ids, mask = batch()
    _, cache = greedy(model, growing_cache(4), ids, mask, steps=3)
    length = cache.get_seq_length()
    cache.crop(-2)  # replaces `keys` from outside: the next update starts from what is there now
    cache.batch_select_indices(torch.tensor([2, 0]))
    kept = cache.layers[0].keys.clone()
    with torch.inference_mode():
        cache.update(torch.ones(2, 2, 1, 16), torch.ones(2, 2, 1, 16), 0)
    keys = cache.layers[0].keys
    assert keys.shape == (2, 2, length - 1, 16)
    assert torch.equal(keys[:, :, :-1], kept) and torch.equal(keys[:, :, -1:], torch.ones(2, 2, 1, 16))


def test_only_models_whose_layers_keep_every_position_use_it(tiny):
    config = AutoConfig.from_pretrained(str(tiny.reasoner))
    assert supports_growing(config)
    config.layer_types = ["full_attention", "sliding_attention"]
    assert not supports_growing(config)
