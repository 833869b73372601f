"""A tiny Idefics3 perceiver (the SmolVLM v1 architecture)."""

from __future__ import annotations

from pathlib import Path

from tools.tiny.configs import save_model, text_config
from tools.tiny.tokenizer import build_tokenizer


def build_idefics3(out_dir: Path, seed: int = 0) -> Path:
    """Idefics3, the SmolVLM architecture: SigLIP-style tower, pixel shuffle, a Llama text model."""
    import torch
    from transformers import (
        Idefics3Config,
        Idefics3ForConditionalGeneration,
        Idefics3ImageProcessor,
        Idefics3Processor,
        Idefics3VisionConfig,
        LlamaConfig,
    )

    torch.manual_seed(seed)
    grid = [f"<row_{i}_col_{j}>" for i in range(1, 7) for j in range(1, 7)]
    extra = ("<fake_token_around_image>", "<global-img>", "<end_of_utterance>", *grid)
    tok = build_tokenizer(extra_special=extra)
    text = text_config(len(tok), tok).to_dict()
    text = LlamaConfig(**{k: v for k, v in text.items() if k in LlamaConfig().to_dict() or k == "head_dim"})
    vision = Idefics3VisionConfig(
        hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2, image_size=32, patch_size=16
    )
    config = Idefics3Config(
        vision_config=vision,
        text_config=text,
        scale_factor=2,
        image_token_id=tok.convert_tokens_to_ids("<image>"),
        tie_word_embeddings=False,
    )
    model = Idefics3ForConditionalGeneration(config)
    processor = Idefics3Processor(
        image_processor=Idefics3ImageProcessor(
            size={"longest_edge": 64}, max_image_size={"longest_edge": 32}, do_image_splitting=True
        ),
        tokenizer=tok,
        image_seq_len=1,
        chat_template=tok.chat_template,
    )
    processor.save_pretrained(out_dir)
    return save_model(model, tok, out_dir)
