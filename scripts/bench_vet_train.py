"""Training speed and peak memory of `xthink vet-train`, on a synthetic VET dataset.

Usage: python scripts/bench_vet_train.py [--steps 30] [--batch-size 2] [--examples 16] [--lora]
                                         [--real-geometry] [--image-size W H] [--gradient-checkpointing]
                                         [--device auto]
Default: the tiny LLaVA-OneVision of the test suite (CPU-sized). `--real-geometry` builds a random-weight model
with the geometry of llava-hf/llava-onevision-qwen2-0.5b-ov-hf (SigLIP so400m: 27 layers, width 1152, 384 px
tiles of 729 tokens, AnyRes up to 6x6 tiles with anyres_max_9; Qwen2-0.5B: 24 layers, width 896, vocabulary
151,936) and 640x480 images, for a GPU run at the paper's settings (bf16 mixed precision, lr 1e-5 / 2e-6,
cosine, warmup 3%). Everything goes through `run_training`, the code `xthink vet-train` runs. Prints one JSON
object: steps/s, tokens/s (prompt + target tokens, padding excluded), peak memory (CPU RSS; CUDA
max_memory_allocated on a GPU) and the projected time for the paper's 382K examples at this batch size on
one device.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import tempfile
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

PAPER_EXAMPLES = 382_000


def build_real_geometry(out: Path) -> Path:
    """Random weights, real shapes: what memory and speed depend on (the tiny tokenizer's ids fit the vocab)."""
    import torch
    from onevision_geometry import PATCH, TILE, save_onevision
    from transformers import Qwen2Config, SiglipVisionConfig

    from tools.tiny.tokenizer import build_tokenizer

    torch.manual_seed(0)
    tok = build_tokenizer()
    vision = SiglipVisionConfig(hidden_size=1152, intermediate_size=4304, num_hidden_layers=27, num_attention_heads=16,
                                image_size=TILE, patch_size=PATCH, vision_use_head=False)  # fmt: skip
    text = Qwen2Config(vocab_size=151_936, hidden_size=896, intermediate_size=4864, num_hidden_layers=24,
                       num_attention_heads=14, num_key_value_heads=2, max_position_embeddings=32768,
                       eos_token_id=tok.convert_tokens_to_ids("<|im_end|>"), pad_token_id=tok.pad_token_id)  # fmt: skip
    return save_onevision(out, tok, vision, text, tie_word_embeddings=True)


def write_data(root: Path, examples: int, size: tuple[int, int], target_words: int) -> Path:
    """Coloured shapes with descriptions of about `target_words` words (the teacher's are ~200-400)."""
    from PIL import Image, ImageDraw

    from tools.tiny.tokenizer import CORPUS_LINES
    from tools.vet.dataset import Pair, write_dataset

    rng = random.Random(0)
    words = " ".join(CORPUS_LINES).split()
    (root / "images").mkdir(parents=True, exist_ok=True)
    pairs = []
    for i in range(examples):
        img = Image.new("RGB", size, "white")
        ImageDraw.Draw(img).rectangle((rng.randint(0, size[0] // 2), rng.randint(0, size[1] // 2),
                                       size[0] // 2 + 20, size[1] // 2 + 20), fill=rng.choice(["red", "blue"]))
        img.save(root / "images" / f"{i}.png")
        target = " ".join(rng.choice(words) for _ in range(target_words))
        pairs.append(Pair(str(i), f"images/{i}.png", "Describe the fine-grained content of the image, including "
                          "scenes, objects, relationships, instance location, and any text present. Especially, "
                          "pay attention to the square.", target))  # fmt: skip
    write_dataset(root, pairs)
    return root


def tokens_per_example(data: Path, base: Path) -> float:
    from transformers import AutoProcessor

    from tools.vet.collate import VetCollator
    from tools.vet.dataset import load_pairs

    collator = VetCollator(AutoProcessor.from_pretrained(base))
    rows = list(load_pairs(data))
    return sum(int(collator([row])["attention_mask"].sum()) for row in rows) / len(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--batch-size", type=int, default=2)
    parser.add_argument("--examples", type=int, default=16)
    parser.add_argument("--lora", action="store_true")
    parser.add_argument("--real-geometry", action="store_true")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--image-size", type=int, nargs=2, default=None, metavar=("W", "H"),
                        help="training image size (default 640 480 with --real-geometry, else 64 48)")
    parser.add_argument("--gradient-checkpointing", action="store_true")
    args = parser.parse_args()

    import torch

    from tools.backends.loading import quiet_transformers
    from tools.tiny.llava import build_llava_onevision
    from tools.vet.train import TrainConfig, run_training

    quiet_transformers()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        base = build_real_geometry(root / "base") if args.real_geometry else build_llava_onevision(root / "base")
        size, words = ((640, 480), 300) if args.real_geometry else ((64, 48), 60)
        size = tuple(args.image_size) if args.image_size else size
        data = write_data(root / "data", args.examples, size, words)
        per_example = tokens_per_example(data, base)
        if torch.cuda.is_available():
            torch.cuda.reset_peak_memory_stats()
        summary = run_training(TrainConfig(data=data, base=str(base), out=root / "out", max_steps=args.steps,
                                           batch_size=args.batch_size, lora=args.lora, device=args.device,
                                           save_steps=10**9, logging_steps=10,
                                           gradient_checkpointing=args.gradient_checkpointing))  # fmt: skip
        steps_per_s = summary.steps / summary.seconds
        figures = {
            "model": "llava-onevision-0.5b geometry (random)" if args.real_geometry else "tiny llava-onevision",
            "device": "cuda" if torch.cuda.is_available() and args.device != "cpu" else "cpu",
            "torch_threads": torch.get_num_threads(), "mode": "lora" if args.lora else "full",
            "steps": summary.steps, "batch_size": args.batch_size, "seconds": round(summary.seconds, 2),
            "steps_per_s": round(steps_per_s, 3), "tokens_per_example": round(per_example, 1),
            "tokens_per_s": round(steps_per_s * args.batch_size * per_example, 1),
            "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
            "cuda_peak_mb": round(torch.cuda.max_memory_allocated() / 2**20, 1) if torch.cuda.is_available() else None,
            "projected_hours_382k": round(PAPER_EXAMPLES / args.batch_size / steps_per_s / 3600, 2),
            "loss": [summary.first_loss, summary.final_loss],
        }  # fmt: skip
    print(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
