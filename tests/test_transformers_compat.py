"""The KV cache reaches the model and comes back under the installed transformers' name for it.

vLLM pins an older transformers (5.20.x, `past_key_values`) than the one the project is developed on
(`cache`). Under the wrong name an old release does not fail: it takes the argument into `**kwargs`
and fills a cache of its own, so the engines would recompute every prefix and their equality tests
would still pass. These tests look at the cache object itself; CI runs them under both releases.
"""

from __future__ import annotations

import torch

from tools.backends.compat import cache_kwargs, returned_cache
from tools.backends.hf_reasoner import TransformersReasoner
from tools.backends.kv_cache import cache_layers, to_dynamic_cache
from tools.backends.loading import Placement


def tiny_model(tiny):
    return TransformersReasoner(str(tiny.reasoner), Placement(device="cpu")).load()[1]


def test_a_forward_fills_the_cache_it_is_given(tiny):
    model = tiny_model(tiny)
    cache = to_dynamic_cache([])
    with torch.inference_mode():
        model(input_ids=torch.tensor([[5, 6, 7, 8]]), use_cache=True, **cache_kwargs(cache))
    layers = cache_layers(cache)
    assert len(layers) == model.config.num_hidden_layers
    assert layers[0][0].shape[2] == 4, "the given cache holds the 4 prompt positions"


def test_generate_continues_the_given_cache_and_returns_it(tiny):
    model = tiny_model(tiny)
    ids = torch.tensor([[5, 6, 7, 8]])
    cache = to_dynamic_cache([])
    with torch.inference_mode():
        model(input_ids=ids[:, :-1], use_cache=True, **cache_kwargs(cache))
        out = model.generate(input_ids=ids, max_new_tokens=3, min_new_tokens=3, do_sample=False,
                             return_dict_in_generate=True, **cache_kwargs(cache))  # fmt: skip
    assert returned_cache(out) is cache, "generate went on from our prefilled cache"
    assert cache_layers(returned_cache(out))[0][0].shape[2] == 4 + 3 - 1
