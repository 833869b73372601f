"""Follow-up extraction on an already-seen image vs the first call, with the real LLaVA-OneVision geometry.

Usage: python scripts/bench_perceiver_cache.py [--images 3] [--layers 2] [--device cpu]
The model is random-weight and built offline from a config with the geometry of
llava-hf/llava-onevision-qwen2-0.5b-ov-hf (SigLIP 384 px, patch 14: 729 tokens per tile; AnyRes grid up to
6x6 tiles of 384 px with `anyres_max_9`) but few, narrow layers, so the image's prefill dominates a call,
as it does for the real 0.5B model on a large image. It is saved and loaded through the ordinary
`from_pretrained` path by the product's perceiver. For each image: a first extraction (vision tower and
full prefill), then a follow-up with another request on the same image (its keys/values reused). Prints
the median seconds of each and their ratio.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")


def build(out: Path, layers: int, width: int) -> Path:
    import torch
    from onevision_geometry import PATCH, TILE, save_onevision
    from transformers import Qwen2Config, SiglipVisionConfig

    from tools.tiny.tokenizer import build_tokenizer

    torch.manual_seed(0)
    tok = build_tokenizer()
    vision = SiglipVisionConfig(hidden_size=width, intermediate_size=width * 4, num_hidden_layers=layers,
                                num_attention_heads=4, image_size=TILE, patch_size=PATCH, vision_use_head=False)
    text = Qwen2Config(vocab_size=len(tok), hidden_size=width, intermediate_size=width * 4, num_hidden_layers=layers,
                       num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=32768,
                       eos_token_id=tok.convert_tokens_to_ids("<|im_end|>"), pad_token_id=tok.pad_token_id)
    return save_onevision(out, tok, vision, text)


def main() -> None:
    from PIL import Image, ImageDraw

    from tools.backends.base import PerceiveRequest
    from tools.backends.hf_perceiver import TransformersPerceiver
    from tools.backends.loading import Placement, quiet_transformers

    parser = argparse.ArgumentParser()
    parser.add_argument("--images", type=int, default=3)
    parser.add_argument("--layers", type=int, default=2)
    parser.add_argument("--width", type=int, default=256)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    quiet_transformers()
    with tempfile.TemporaryDirectory() as tmp:
        perceiver = TransformersPerceiver(str(build(Path(tmp) / "ov", args.layers, args.width)),
                                          Placement(device=args.device))
        firsts, follows = [], []
        for i in range(args.images + 1):  # the first image warms up and is not counted
            image = Image.new("RGB", (1024, 768), (40 * i % 255, 120, 200))
            ImageDraw.Draw(image).rectangle((100 + 10 * i, 100, 400, 300), fill="red")
            key = f"bench-{i}"
            first = timed(perceiver, PerceiveRequest((image,), "Describe the fine-grained content of the image.",
                                                     image_key=key, max_new_tokens=16))
            follow = timed(perceiver, PerceiveRequest((image,), "Especially, pay attention to the red box.",
                                                      image_key=key, max_new_tokens=16))
            if i:
                firsts.append(first[0])
                follows.append(follow[0])
                print(f"image {i}: first {first[0]:.3f}s ({first[1].prompt_tokens} prompt tokens), follow-up "
                      f"{follow[0]:.3f}s ({follow[1].cached_tokens} of {follow[1].prompt_tokens} reused)", flush=True)
        a, b = statistics.median(firsts), statistics.median(follows)
        print(f"median first {a:.3f}s, follow-up {b:.3f}s: follow-up / first = {b / a:.2f}x")


def timed(perceiver, request):
    started = time.perf_counter()
    out = perceiver.perceive([request])[0]
    return time.perf_counter() - started, out


if __name__ == "__main__":
    main()
