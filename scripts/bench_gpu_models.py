"""The models and low-level timers behind scripts/bench_gpu.py.

Random weights at the real sizes (or tiny ones for `--tiny`), saved to a folder and loaded back by our
own backends, so the figures are those of the engine users get. Nothing is downloaded: configs are written
here and the tokenizer is the tiny offline one (its ids fit any vocabulary size).
"""

from __future__ import annotations

import time
from pathlib import Path

# Qwen3-1.7B's config.json (hub: Qwen/Qwen3-1.7B); the vocabulary is set apart (tiny: the tokenizer's size).
QWEN3_1_7B = {"hidden_size": 2048, "intermediate_size": 6144, "num_hidden_layers": 28, "num_attention_heads": 16,
              "num_key_value_heads": 8, "head_dim": 128, "tie_word_embeddings": True, "vocab_size": 151_936}  # fmt: skip
TINY_REASONER = {"hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2, "num_attention_heads": 4,
                 "num_key_value_heads": 2, "head_dim": 16, "tie_word_embeddings": False, "vocab_size": None}  # fmt: skip


def build_reasoner(out: Path, sizes: dict, device: str, dtype) -> Path:
    """A Qwen3ForCausalLM of `sizes`, built directly on `device` in `dtype` (fast init on a GPU) and saved."""
    import torch
    from transformers import Qwen3Config, Qwen3ForCausalLM

    from tools.tiny.configs import save_model
    from tools.tiny.tokenizer import build_tokenizer

    torch.manual_seed(0)
    tok = build_tokenizer(out)
    config = Qwen3Config(**{**sizes, "vocab_size": sizes["vocab_size"] or len(tok)}, max_position_embeddings=40960,
                         bos_token_id=tok.convert_tokens_to_ids("<|endoftext|>"),
                         eos_token_id=tok.convert_tokens_to_ids("<|im_end|>"), pad_token_id=tok.pad_token_id)  # fmt: skip
    with torch.device(device):
        model = Qwen3ForCausalLM(config).to(dtype)
    return save_model(model, tok, out)


def build_perceiver(out: Path, tiny: bool) -> Path:
    """LLaVA-OneVision: the test suite's tiny one, or the 0.5B's geometry (SigLIP so400m + Qwen2-0.5B)."""
    if tiny:
        from tools.tiny.llava import build_llava_onevision

        return build_llava_onevision(out)
    from bench_vet_train import build_real_geometry

    return build_real_geometry(out)


def weight_bytes(model) -> int:
    """Bytes one decode step must read: every parameter once (a tied embedding counts once)."""
    return sum(p.numel() * p.element_size() for p in model.parameters())


def sync(device) -> None:
    import torch

    if torch.device(device).type == "cuda":
        torch.cuda.synchronize()


def copy_bandwidth(device, megabytes: int) -> float:
    """Memory bandwidth in bytes/s from a large device-to-device copy (read + write counted), best of 5."""
    import torch

    src = torch.empty(megabytes * 2**20, dtype=torch.uint8, device=device)
    dst = torch.empty_like(src)
    dst.copy_(src)
    best = float("inf")
    for _ in range(5):
        sync(device)
        started = time.perf_counter()
        dst.copy_(src)
        sync(device)
        best = min(best, time.perf_counter() - started)
    return 2 * src.numel() / best


def forward_seconds_per_token(model, steps: int, context: int = 32) -> float:
    """One decode step's model forward alone (no generate loop, no logits processors): the floor our
    engine's per-token wall time is compared with. CUDA events on a GPU, a wall clock on CPU."""
    import torch

    from tools.backends.kv_cache import to_dynamic_cache

    device = model.device
    cache = to_dynamic_cache([])
    ids = torch.arange(1, context + 1, device=device)[None]
    with torch.inference_mode():
        model(input_ids=ids, cache=cache, use_cache=True)
        token = ids[:, -1:]
        model(input_ids=token, cache=cache, use_cache=True)  # warm-up step
        sync(device)
        if device.type == "cuda":
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            for _ in range(steps):
                model(input_ids=token, cache=cache, use_cache=True)
            end.record()
            torch.cuda.synchronize()
            return start.elapsed_time(end) / 1000 / steps
        started = time.perf_counter()
        for _ in range(steps):
            model(input_ids=token, cache=cache, use_cache=True)
        return (time.perf_counter() - started) / steps
