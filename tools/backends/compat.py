"""The one place that knows which transformers release is installed.

transformers renamed the KV cache from `past_key_values` to `cache` (the model forward's and `generate`'s
argument, and the field of `generate`'s output). vLLM pins an older transformers than the one the
project is otherwise developed on (vLLM 0.33.0 pins 5.20.2, which still says `past_key_values`), and a
user who runs the reasoner on vLLM and the perceiver in process gets that older release. Newer releases
accept the old name with a deprecation warning only until 5.40, while older ones silently take an
unknown `cache=` into `**kwargs` and fill a cache of their own: a prefill would then leave ours empty.
So the engines ask here for the name instead of spelling either one.

The name is read from `generate`'s output class, not from a version number: that is exactly the field
the engines read back, and it carries no guess about which release made the change.
"""

from __future__ import annotations

import functools


@functools.cache
def cache_name() -> str:
    """`cache` where the installed transformers uses the new name, else `past_key_values`."""
    from transformers.generation.utils import GenerateDecoderOnlyOutput

    return "cache" if "cache" in GenerateDecoderOnlyOutput.__dataclass_fields__ else "past_key_values"


def cache_kwargs(cache) -> dict:
    """The keyword argument that hands `cache` to a model's forward or to `generate`."""
    return {cache_name(): cache}


def returned_cache(output):
    """The cache `generate` returns (with `return_dict_in_generate=True`), under either name."""
    return getattr(output, cache_name())
