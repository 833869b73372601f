"""A padded batch's attention mask at a decode step, taken from the padding mask instead of rebuilt.

transformers builds the 4D mask of every forward pass from its mask function: at a decode step of a
left-padded batch that is B x T evaluations of "causal and not padding" every step, though the one new
query sees every earlier position and the answer is the padding mask itself. Measured on the tiny reasoner at
16 rows x 200 positions: 0.17 ms of a 1.46 ms step (nothing at one row, where no mask is built). Here a model
gets an attention implementation that is transformers' SDPA with one change: at a decode step of a padded
batch, the mask is `attention_mask[:, None, None, :]`, the same booleans `sdpa_mask` makes; every other
case (prefill, no padding, sliding windows, extra mask functions) goes to `sdpa_mask` unchanged. The attention
function registered with it is transformers' SDPA, except at a decode step of a batch the engine marked as
sharing a long prompt prefix (tools/backends/cascade_attention.py).
"""

from __future__ import annotations

from tools.backends import cascade_attention

NAME = "xthink_sdpa"


def decode_step_mask(batch_size, q_length, kv_length, q_offset=0, kv_offset=0, mask_function=None,
                     attention_mask=None, local_size=None, **kwargs):  # fmt: skip
    """`sdpa_mask`'s signature and result; the padding mask itself at a padded batch's decode step."""
    from transformers.masking_utils import causal_mask_function, sdpa_mask

    mask_function = mask_function or causal_mask_function
    if (q_length == 1 and batch_size > 1 and attention_mask is not None and attention_mask.dim() == 2
            and mask_function is causal_mask_function and local_size is None and kv_offset == 0
            and isinstance(q_offset, int) and q_offset == kv_length - 1 and attention_mask.shape[-1] == kv_length
            and not bool(attention_mask[:, 0].all())):  # fmt: skip  (left padding: a padded row starts with 0)
        return attention_mask[:, None, None, :].bool()
    return sdpa_mask(batch_size, q_length, kv_length, q_offset, kv_offset, mask_function, attention_mask,
                     local_size, **kwargs)  # fmt: skip


def xthink_sdpa(module, query, key, value, attention_mask, scaling=None, dropout=0.0, **kwargs):
    """transformers' SDPA, or at a decode step under `cascade_attention.shared_prefix` the cascade split."""
    from transformers.integrations.sdpa_attention import sdpa_attention_forward

    plan = cascade_attention.applies(query, key, attention_mask, kwargs) if dropout == 0.0 else None
    if plan is not None:
        scale = scaling if scaling is not None else query.shape[-1] ** -0.5
        return cascade_attention.cascade_attention(plan, module, query, key, value, attention_mask, scale)
    return sdpa_attention_forward(module, query, key, value, attention_mask, scaling=scaling, dropout=dropout,
                                  **kwargs)  # fmt: skip


def use_decode_step_mask(model) -> bool:
    """Give `model` the implementation above where it runs transformers' SDPA; whether it now does."""
    from transformers.masking_utils import ALL_MASK_ATTENTION_FUNCTIONS, AttentionMaskInterface
    from transformers.modeling_utils import ALL_ATTENTION_FUNCTIONS, AttentionInterface

    if getattr(model.config, "_attn_implementation", None) != "sdpa":
        return getattr(model.config, "_attn_implementation", None) == NAME
    if NAME not in ALL_ATTENTION_FUNCTIONS.valid_keys():
        AttentionInterface.register(NAME, xthink_sdpa)
        AttentionMaskInterface.register(NAME, decode_step_mask)
    model.set_attn_implementation(NAME)
    return ALL_MASK_ATTENTION_FUNCTIONS[NAME] is decode_step_mask
