"""Write a tiny checkpoint in the LLaVA-NeXT training layout of the paper's perception models.

Same key names, config fields and tokenizer files as `markendo/llava-extract-qwen3-*`, tiny dimensions:
SigLIP with its last encoder layer dropped (2 of 3 kept) plus its pooling head, a 2-layer GELU projector,
`image_newline`, and a Qwen3 text model; `lm_head` present unless `tied`.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from safetensors.torch import save_file


def write_checkpoint(root: Path, tied: bool = False, extra_tensors: dict | None = None,
                     drop: tuple[str, ...] = ()) -> Path:
    from transformers import Qwen3Config, Qwen3ForCausalLM, SiglipVisionConfig, SiglipVisionModel

    from tools.tiny.tokenizer import build_tokenizer

    torch.manual_seed(0)
    tower_dir = root / "siglip-tiny"
    vision = SiglipVisionConfig(hidden_size=32, intermediate_size=64, num_hidden_layers=3, num_attention_heads=2,
                                image_size=32, patch_size=16, vision_use_head=True)
    vision.save_pretrained(tower_dir)
    siglip = SiglipVisionModel(vision)
    tensors = {}
    for key, value in siglip.state_dict().items():
        if key.startswith("encoder.layers.2."):
            continue  # the trainer deletes the last encoder layer
        tensors["model.vision_tower.vision_tower.vision_model." + key] = value  # the transformers 4 layout
    ckpt = root / "llava-extract-tiny"
    ckpt.mkdir(parents=True, exist_ok=True)
    tok = build_tokenizer()
    tok.save_pretrained(ckpt)
    text = Qwen3Config(vocab_size=len(tok) + 7, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                       num_attention_heads=4, num_key_value_heads=2, head_dim=16, max_position_embeddings=4096,
                       tie_word_embeddings=tied)
    for key, value in Qwen3ForCausalLM(text).state_dict().items():
        if key == "lm_head.weight" and tied:
            continue
        tensors[key] = value
    tensors["model.mm_projector.0.weight"] = torch.randn(64, 32) * 0.02
    tensors["model.mm_projector.0.bias"] = torch.zeros(64)
    tensors["model.mm_projector.2.weight"] = torch.randn(64, 64) * 0.02
    tensors["model.mm_projector.2.bias"] = torch.zeros(64)
    tensors["model.image_newline"] = torch.randn(64) * 0.02
    tensors.update(extra_tensors or {})
    for key in drop:
        tensors.pop(key)
    save_file({k: v.contiguous() for k, v in tensors.items()}, str(ckpt / "model.safetensors"))
    config = {
        "architectures": ["LlavaQwen3ForCausalLM"], "model_type": "llava_qwen3", **text.to_dict(),
        "mm_vision_tower": str(tower_dir), "mm_projector_type": "mlp2x_gelu", "mm_hidden_size": 32,
        "mm_vision_select_layer": -1, "mm_vision_select_feature": "patch", "mm_patch_merge_type": "spatial_unpad",
        "image_aspect_ratio": "anyres_max_9", "image_grid_pinpoints": "(1x1),...,(2x2)",
        "mm_use_im_start_end": False, "tokenizer_padding_side": "right",
    }  # fmt: skip
    config["model_type"] = "llava_qwen3"
    config["architectures"] = ["LlavaQwen3ForCausalLM"]
    (ckpt / "config.json").write_text(json.dumps(config, indent=2, default=str))
    return ckpt
