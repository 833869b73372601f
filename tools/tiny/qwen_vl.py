"""Tiny Qwen-VL perceivers: Qwen2.5-VL and Qwen3-VL, which share the tokenizer layout, the token ids and the
processor (dynamic resolution in merged 2x2 patches)."""

from __future__ import annotations

from pathlib import Path

from tools.tiny.configs import save_model
from tools.tiny.tokenizer import build_tokenizer


def _tokenizer():
    """The Qwen-VL tokenizer layout: an image is `<|vision_start|><|image_pad|><|vision_end|>`."""
    markers = ("<|vision_start|>", "<|vision_end|>", "<|video_pad|>")
    return build_tokenizer(
        image_token="<|image_pad|>",
        image_placeholder="<|vision_start|><|image_pad|><|vision_end|>",
        extra_special=markers,
    )


def _text(tok) -> dict:
    """A 2-layer text model; mrope sections sum to head_dim / 2 (16 / 2)."""
    return {
        "vocab_size": len(tok), "hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2,
        "num_attention_heads": 4, "num_key_value_heads": 2, "max_position_embeddings": 8192,
        "rope_parameters": {"rope_type": "default", "rope_theta": 10000.0, "mrope_section": [2, 3, 3]},
        "eos_token_id": tok.convert_tokens_to_ids("<|im_end|>"), "pad_token_id": tok.pad_token_id,
    }  # fmt: skip


def _token_ids(tok) -> dict:
    return {
        "image_token_id": tok.convert_tokens_to_ids("<|image_pad|>"),
        "video_token_id": tok.convert_tokens_to_ids("<|video_pad|>"),
        "vision_start_token_id": tok.convert_tokens_to_ids("<|vision_start|>"),
        "vision_end_token_id": tok.convert_tokens_to_ids("<|vision_end|>"),
    }


def _save(model, tok, processor_class, patch_size: int, out_dir: Path) -> Path:
    """Save a Qwen-VL model with its processor: 4 to 16 merged 2x2 patches per image."""
    from transformers import Qwen2VLImageProcessor, Qwen2VLVideoProcessor

    side = patch_size * 2
    pixels = {"shortest_edge": side * side * 4, "longest_edge": side * side * 16}
    grid = dict(size=pixels, patch_size=patch_size, merge_size=2, temporal_patch_size=2)
    processor = processor_class(
        image_processor=Qwen2VLImageProcessor(**grid),
        video_processor=Qwen2VLVideoProcessor(**grid),
        tokenizer=tok,
        chat_template=tok.chat_template,
    )
    processor.save_pretrained(out_dir)
    return save_model(model, tok, out_dir)


def build_qwen2_5_vl(out_dir: Path, seed: int = 0) -> Path:
    """Qwen2.5-VL: a windowed ViT with 2x2 patch merging and multimodal RoPE over a Qwen2 text model."""
    import torch
    from transformers import Qwen2_5_VLConfig, Qwen2_5_VLForConditionalGeneration, Qwen2_5_VLProcessor

    torch.manual_seed(seed)
    tok = _tokenizer()
    vision = {
        "depth": 2, "hidden_size": 32, "intermediate_size": 64, "num_heads": 2, "out_hidden_size": 64,
        "patch_size": 14, "spatial_merge_size": 2, "temporal_patch_size": 2, "window_size": 56,
        "fullatt_block_indexes": [1],
    }  # fmt: skip
    config = Qwen2_5_VLConfig(text_config=_text(tok), vision_config=vision, tie_word_embeddings=False,
                              **_token_ids(tok))  # fmt: skip
    model = Qwen2_5_VLForConditionalGeneration(config)
    return _save(model, tok, Qwen2_5_VLProcessor, 14, out_dir)


def build_qwen3_vl(out_dir: Path, seed: int = 0) -> Path:
    """Qwen3-VL: a ViT with learned (interpolated) position embeddings, 2x2 merging and DeepStack (vision
    features added to early text layers), interleaved multimodal RoPE over a Qwen3 text model."""
    import torch
    from transformers import Qwen3VLConfig, Qwen3VLForConditionalGeneration, Qwen3VLProcessor

    torch.manual_seed(seed)
    tok = _tokenizer()
    text = _text(tok)
    text["head_dim"] = 16  # Qwen3 sets it apart from hidden_size / heads (default 128)
    text["bos_token_id"] = tok.convert_tokens_to_ids("<|endoftext|>")  # the default is the real Qwen id
    text["rope_parameters"] = {**text["rope_parameters"], "mrope_interleaved": True}
    vision = {
        "depth": 2, "hidden_size": 32, "intermediate_size": 64, "num_heads": 2, "out_hidden_size": 64,
        "patch_size": 16, "spatial_merge_size": 2, "temporal_patch_size": 2, "num_position_embeddings": 64,
        "deepstack_visual_indexes": [0],
    }  # fmt: skip
    config = Qwen3VLConfig(text_config=text, vision_config=vision, tie_word_embeddings=False,
                           **_token_ids(tok))  # fmt: skip
    model = Qwen3VLForConditionalGeneration(config)
    return _save(model, tok, Qwen3VLProcessor, 16, out_dir)
