"""`xthink vet-train`: fine-tune a perceiver on the pairs `xthink vet-data` wrote, resuming a cut-short run.

A thin typer layer over tools/vet/train.py; torch, transformers and peft are imported inside the command so
`xthink --help` stays fast. Errors are one line: exit 2 for bad input (or the `train` extra missing), 3 for a
base model that cannot load.
"""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console

from graphs.cli.common import EXIT_INPUT, EXIT_MODEL, fail


def vet_train_command(
    data: Path = typer.Option(..., "--data", help="dataset folder written by xthink vet-data"),
    base: str = typer.Option(..., "--base", help="perceiver to fine-tune: hub id or local folder (transformers "
                             "image-text-to-text, e.g. llava-hf/llava-onevision-qwen2-0.5b-ov-hf)"),
    out: Path = typer.Option(..., "--out", help="output folder: the trained perceiver (and checkpoints/)"),
    lora: bool = typer.Option(False, "--lora", help="train LoRA adapters (merged on save; kept in OUT/adapter)"),
    epochs: float = typer.Option(1.0, "--epochs", min=0.0, help="passes over the data (paper: 1)"),
    max_steps: int = typer.Option(-1, "--max-steps", help="stop after N optimizer steps (overrides --epochs)"),
    lr: float = typer.Option(1e-5, "--lr", min=0.0, help="learning rate (paper: 1e-5)"),
    vision_lr: float = typer.Option(2e-6, "--vision-lr", min=0.0, help="vision tower learning rate (paper: 2e-6)"),
    batch_size: int = typer.Option(1, "--batch-size", min=1, help="examples per device per step"),
    grad_accum: int = typer.Option(1, "--grad-accum", min=1, help="gradient accumulation steps"),
    max_length: int | None = typer.Option(None, "--max-length", min=1, help="cut targets so a row fits"),
    save_steps: int = typer.Option(500, "--save-steps", min=1, help="checkpoint every N steps"),
    logging_steps: int = typer.Option(10, "--logging-steps", min=1, help="log loss every N steps"),
    report_to: str = typer.Option("none", "--report-to", help="none | tensorboard | wandb | ... (Trainer's)"),
    lora_rank: int = typer.Option(16, "--lora-rank", min=1),
    gradient_checkpointing: bool = typer.Option(False, "--gradient-checkpointing", help="trade compute for memory"),
    device: str = typer.Option("auto", help="auto | cpu | cuda (accelerate launch/torchrun place processes)"),
    seed: int = typer.Option(0, "--seed"),
    restart: bool = typer.Option(False, "--restart", help="ignore checkpoints in OUT and start over"),
    deepspeed: str | None = typer.Option(None, "--deepspeed", help="DeepSpeed config JSON (ZeRO; needs deepspeed)"),
) -> None:
    """Fine-tune a perceiver on VET pairs; resumes from OUT/checkpoints when a run was cut short."""
    from tools.vet.train import TrainConfig

    if max_steps == 0 or max_steps < -1:
        fail("--max-steps must be a positive number of steps", EXIT_INPUT)
    if out.exists() and not out.is_dir():
        fail(f"--out '{out}' is a file; pass a folder for the trained perceiver", EXIT_INPUT)
    config = TrainConfig(
        data=data, base=base, out=out, lora=lora, epochs=epochs, max_steps=max_steps, lr=lr, vision_lr=vision_lr,
        batch_size=batch_size, grad_accum=grad_accum, max_length=max_length, save_steps=save_steps,
        logging_steps=logging_steps, report_to=report_to, device=device, gradient_checkpointing=gradient_checkpointing,
        lora_rank=lora_rank, seed=seed, restart=restart, deepspeed=deepspeed,
    )  # fmt: skip
    summary = _run_vet_train(config)
    loss = f"loss {summary.first_loss:.4f} -> {summary.final_loss:.4f}" if summary.losses else "no loss logged"
    resumed = f", resumed from {summary.resumed_from}" if summary.resumed_from else ""
    Console().print(f"trained {summary.steps} steps in {summary.seconds:.1f}s ({loss}{resumed}); perceiver saved "
                    f"to {summary.out}", markup=False, highlight=False)  # fmt: skip


def _run_vet_train(config):
    """Train; a missing extra, bad data or a base that cannot load is one line and its exit code."""
    from tools.backends.loading import ModelLoadError, quiet_transformers
    from tools.backends.spec import ModelSpecError
    from tools.files.folders import NotOurFolderError
    from tools.vet.dataset import DatasetError
    from tools.vet.train import run_training

    quiet_transformers()
    try:
        return run_training(config)
    except ImportError as exc:
        fail(f"training needs the 'train' extra ({exc}); pip install 'extract-think[train]'", EXIT_INPUT)
    except (DatasetError, ModelSpecError, NotOurFolderError) as exc:
        fail(str(exc), EXIT_INPUT)
    except ModelLoadError as exc:
        fail(str(exc), EXIT_MODEL)
