"""Engine knobs shared by the backends: batching, KV reuse, in-flight caps, GPU memory shares.

They are plain data so the CLI, the Python API and a server's JSON context can all set them. Each
backend reads the fields that apply to it and ignores the rest.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class EngineOptions:
    # transformers in process: requests from concurrent callers batched into one generate call.
    max_batch: int = 32
    batch_wait_ms: float = 10.0  # a batch closes once no new request came for this long (or after 100 ms)
    # transformers in process: LRU of computed keys/values (0 turns reuse off), per role, in MB.
    reasoner_cache_mb: float = 2048.0
    perceiver_cache_mb: float = 2048.0
    # HTTP: requests in flight per model (all endpoints together) and per endpoint URL.
    concurrency: int = 8
    max_in_flight: int | None = None
    # transformers on CPU: intra-op threads of each model's worker (None: the cores split between the two
    # roles' workers, so their thread teams do not fight over the same cores).
    cpu_threads: int | None = None
    # vLLM in process: the share of GPU memory each role's engine may take (both fit on one GPU).
    reasoner_gpu_memory: float = 0.55
    perceiver_gpu_memory: float = 0.35

    def __post_init__(self):
        if self.max_batch < 1:
            raise ValueError("max_batch must be at least 1")
        if self.reasoner_cache_mb < 0 or self.perceiver_cache_mb < 0:
            raise ValueError("cache sizes must be >= 0 MB (0 turns KV reuse off)")
        if self.concurrency < 1 or (self.max_in_flight is not None and self.max_in_flight < 1):
            raise ValueError("concurrency and max_in_flight must be at least 1")
        if self.cpu_threads is not None and self.cpu_threads < 1:
            raise ValueError("cpu_threads must be at least 1")
        if not (0 < self.reasoner_gpu_memory + self.perceiver_gpu_memory <= 1):
            raise ValueError("the two roles' GPU memory shares must add up to at most 1")


def worker_setup(model, options: EngineOptions):
    """What an engine's worker thread does first: on CPU, take its share of the cores."""

    def setup() -> None:
        import os

        import torch

        if model.device.type == "cpu":
            torch.set_num_threads(options.cpu_threads or max(1, (os.cpu_count() or 2) // 2))

    return setup


def model_batcher(run, model, options: EngineOptions, name: str):
    """The one worker (and its batching window) that runs every call of one model."""
    from tools.backends.batcher import MicroBatcher

    return MicroBatcher(run, options.max_batch, options.batch_wait_ms / 1000, name=name,
                        on_start=worker_setup(model, options))
