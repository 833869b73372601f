"""A tiny InternVL perceiver in transformers' `-hf` layout."""

from __future__ import annotations

from pathlib import Path

from tools.tiny.configs import save_model
from tools.tiny.tokenizer import build_tokenizer


def build_internvl(out_dir: Path, seed: int = 0) -> Path:
    """InternVL in transformers' `-hf` layout (the paper's InternVL2.5 end-to-end row): an InternViT tower,
    pixel-shuffle downsampling and an MLP projector over a Qwen2 text model; images cut into tiles."""
    import torch
    from transformers import (
        GotOcr2ImageProcessor,
        InternVLConfig,
        InternVLForConditionalGeneration,
        InternVLProcessor,
        InternVLVideoProcessor,
        InternVLVisionConfig,
        Qwen2Config,
    )

    torch.manual_seed(seed)
    markers = {"start_image_token": "<img>", "end_image_token": "</img>", "context_image_token": "<IMG_CONTEXT>"}
    tok = build_tokenizer(image_token="<IMG_CONTEXT>", image_placeholder="<IMG_CONTEXT>\n",
                          extra_special=("<img>", "</img>"), named_special=markers)  # fmt: skip
    text = Qwen2Config(
        vocab_size=len(tok), hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
        num_key_value_heads=2, max_position_embeddings=8192, tie_word_embeddings=False,
        eos_token_id=tok.convert_tokens_to_ids("<|im_end|>"), pad_token_id=tok.pad_token_id,
    )  # fmt: skip
    vision = InternVLVisionConfig(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2,
                                  image_size=[32, 32], patch_size=[16, 16])  # fmt: skip
    config = InternVLConfig(vision_config=vision, text_config=text, downsample_ratio=0.5, image_seq_length=1,
                            image_token_id=tok.convert_tokens_to_ids("<IMG_CONTEXT>"), tie_word_embeddings=False)
    model = InternVLForConditionalGeneration(config)
    size = {"height": 32, "width": 32}
    processor = InternVLProcessor(
        image_processor=GotOcr2ImageProcessor(size=size, crop_to_patches=True, min_patches=1, max_patches=4),
        video_processor=InternVLVideoProcessor(size=size),
        tokenizer=tok,
        image_seq_length=1,
        chat_template=tok.chat_template,
    )
    processor.save_pretrained(out_dir)
    return save_model(model, tok, out_dir)
