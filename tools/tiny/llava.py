"""Tiny LLaVA-family perceivers: LLaVA-OneVision (the paper's perceiver architecture) and classic Llava."""

from __future__ import annotations

from pathlib import Path

from tools.tiny.configs import save_model, text_config, vision_config
from tools.tiny.tokenizer import build_tokenizer


def build_llava_onevision(out_dir: Path, seed: int = 0) -> Path:
    """LLaVA-OneVision (the paper's perceiver architecture): SigLIP + projector + Qwen3, AnyRes grid."""
    import torch
    from transformers import (
        LlavaOnevisionConfig,
        LlavaOnevisionForConditionalGeneration,
        LlavaOnevisionImageProcessor,
        LlavaOnevisionProcessor,
        LlavaOnevisionVideoProcessor,
    )

    torch.manual_seed(seed)
    tok = build_tokenizer()
    pinpoints = [[32, 32], [32, 64], [64, 32], [64, 64]]
    config = LlavaOnevisionConfig(
        vision_config=vision_config(32),
        text_config=text_config(len(tok), tok),
        image_token_index=tok.convert_tokens_to_ids("<image>"),
        video_token_index=tok.convert_tokens_to_ids("<video>"),
        image_grid_pinpoints=pinpoints,
        vision_feature_select_strategy="full",
        tie_word_embeddings=False,
    )
    model = LlavaOnevisionForConditionalGeneration(config)
    size = {"height": 32, "width": 32}
    processor = LlavaOnevisionProcessor(
        image_processor=LlavaOnevisionImageProcessor(size=size, image_grid_pinpoints=pinpoints),
        video_processor=LlavaOnevisionVideoProcessor(size=size),
        tokenizer=tok,
        num_image_tokens=4,
        vision_feature_select_strategy="full",
        chat_template=tok.chat_template,
    )
    processor.save_pretrained(out_dir)
    return save_model(model, tok, out_dir)


def build_llava(out_dir: Path, seed: int = 0) -> Path:
    """Classic Llava with a SigLIP tower: one 64px image becomes 16 image tokens."""
    import torch
    from transformers import LlavaConfig, LlavaForConditionalGeneration, LlavaProcessor, SiglipImageProcessor

    torch.manual_seed(seed)
    tok = build_tokenizer()
    config = LlavaConfig(
        vision_config=vision_config(64),
        text_config=text_config(len(tok), tok),
        image_token_index=tok.convert_tokens_to_ids("<image>"),
        vision_feature_select_strategy="full",
        vision_feature_layer=-1,
        tie_word_embeddings=False,
    )
    model = LlavaForConditionalGeneration(config)
    processor = LlavaProcessor(
        image_processor=SiglipImageProcessor(size={"height": 64, "width": 64}),
        tokenizer=tok,
        patch_size=16,
        vision_feature_select_strategy="full",
        num_additional_image_tokens=0,
        chat_template=tok.chat_template,
    )
    processor.save_pretrained(out_dir)
    return save_model(model, tok, out_dir)
