"""LLaVA-OneVision at the image geometry of the released 0.5B checkpoints, around towers the caller sizes.

Shared by the benchmarks that need real image-token counts with random weights: SigLIP 384 px tiles of
729 tokens (patch 14), AnyRes grids up to 6x6 tiles, `anyres_max_9` downsampling, the tiny tokenizer (its ids
fit any vocabulary size). The caller chooses the vision and text configs (few narrow layers, or the real ones).
"""

from __future__ import annotations

from pathlib import Path

PATCH, TILE = 14, 384
PINPOINTS = [[TILE * i, TILE * j] for i in range(1, 7) for j in range(1, 7)]


def save_onevision(out: Path, tok, vision, text, tie_word_embeddings: bool = False) -> Path:
    """Build the model (random weights) and its processor, save both to `out` (from_pretrained-loadable)."""
    from transformers import (
        LlavaOnevisionConfig,
        LlavaOnevisionForConditionalGeneration,
        LlavaOnevisionImageProcessor,
        LlavaOnevisionProcessor,
        LlavaOnevisionVideoProcessor,
    )

    from tools.tiny.configs import save_model

    config = LlavaOnevisionConfig(
        vision_config=vision, text_config=text, image_grid_pinpoints=PINPOINTS, vision_aspect_ratio="anyres_max_9",
        vision_feature_select_strategy="full", vision_feature_layer=-1,
        image_token_index=tok.convert_tokens_to_ids("<image>"), video_token_index=tok.convert_tokens_to_ids("<video>"),
        tie_word_embeddings=tie_word_embeddings,
    )  # fmt: skip
    size = {"height": TILE, "width": TILE}
    processor = LlavaOnevisionProcessor(
        image_processor=LlavaOnevisionImageProcessor(size=size, image_grid_pinpoints=PINPOINTS),
        video_processor=LlavaOnevisionVideoProcessor(size=size), tokenizer=tok,
        num_image_tokens=(TILE // PATCH) ** 2, vision_feature_select_strategy="full",
        vision_aspect_ratio="anyres_max_9", chat_template=tok.chat_template,
    )  # fmt: skip
    processor.save_pretrained(out)
    return save_model(LlavaOnevisionForConditionalGeneration(config), tok, out)
