"""`xthink vet-data` and `xthink vet-train`: visual extraction tuning from VQA data to a perceiver folder.

Thin typer layers over tools/vet/run.py and tools/vet/train.py; heavy imports (torch, transformers, peft)
happen inside the commands so `xthink --help` stays fast. Errors are one line, exit 2 for bad input, 3 for
a model that cannot load, 4 for a model server that failed.
"""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

err = Console(stderr=True)
EXIT_INPUT, EXIT_MODEL, EXIT_SERVER = 2, 3, 4


def _fail(message: str, code: int) -> None:
    err.print(f"[bold red]error:[/] {escape(message)}", highlight=False, soft_wrap=True)
    raise typer.Exit(code)


def vet_data_command(
    source: str = typer.Option(..., "--source", help="LLaVA-format .json/.jsonl/.parquet file or folder, or an "
                               "HF dataset id (split train)"),
    teacher: str = typer.Option(..., "--teacher", help="teacher VLM: hub id, local folder, vllm:MODEL or server URL"),
    text_teacher: str | None = typer.Option(None, "--text-teacher", help="text LLM for step 1 (default: the "
                                               "teacher, text only)"),
    out: Path = typer.Option(..., "--out", help="dataset folder (records, images, parquet shards, llava.json)"),
    limit: int | None = typer.Option(None, "--limit", min=1, help="the first N items only"),
    style: str = typer.Option("paper", "--style", help="paper (whole image, questions' focus) | iterative "
                              "(request + region crop, as the extract tool makes them)"),
    concurrency: int = typer.Option(8, "--concurrency", min=1, help="items in flight at once"),
    statement_tokens: int = typer.Option(1024, "--statement-tokens", min=1, help="step 1 token cap"),
    description_tokens: int = typer.Option(2048, "--description-tokens", min=1, help="step 2 token cap"),
    device: str = typer.Option("auto", help="auto | cpu | cuda | cuda:N (in-process teachers)"),
    dtype: str = typer.Option("auto", help="auto | float32 | bfloat16 | float16"),
    restart: bool = typer.Option(False, "--restart", help="wipe the records in --out and start over"),
) -> None:
    """Generate VET training pairs with a teacher VLM (resumable: rerun the same command to continue)."""
    from tools.files.folders import RunFolderError
    from tools.vet.teacher import VetSettings
    from tools.vet.run import check_folder

    if style not in ("paper", "iterative"):
        _fail(f"unknown --style '{style}'; choose paper or iterative", EXIT_INPUT)
    try:
        check_folder(out)  # a folder that is not ours is refused before the teachers load, --restart or not
    except RunFolderError as exc:
        _fail(str(exc), EXIT_INPUT)
    settings = VetSettings(style=style, statement_tokens=statement_tokens,  # type: ignore[arg-type]
                           description_tokens=description_tokens)  # fmt: skip
    summary = _run_vet_data(source, teacher, text_teacher, out, limit, settings, concurrency, device, dtype, restart)
    Console().print(
        f"{summary.ok} pairs in {out} ({summary.ok - summary.done_before} new), {summary.failed} failed (see "
        f"records.jsonl; a rerun retries them); {len(summary.shards)} parquet shard(s) in {out / 'data'}",
        markup=False, highlight=False, soft_wrap=True,
    )  # fmt: skip


def _run_vet_data(source, teacher, text_teacher, out, limit, settings, concurrency, device, dtype, restart):
    from tools.files.data_files import SourceError
    from tools.files.folders import RunFolderError
    from tools.vet.run import VetPlan, run_vet_data
    from tools.vet.sources import load_source
    from tools.backends.http_client import EndpointError
    from tools.backends.loading import ModelLoadError, quiet_transformers
    from tools.backends.spec import ModelSpecError

    quiet_transformers()
    try:
        loaded = load_source(source, limit)
        plan = VetPlan(source=loaded, out=out, teacher=teacher, text_teacher=text_teacher, settings=settings,
                       concurrency=concurrency, restart=restart)  # fmt: skip
        teachers = _teachers(teacher, text_teacher, device, dtype, concurrency)
        with _progress() as progress:
            task = progress.add_task("vet-data", total=len(loaded.items), failed=0)
            failed = [0]

            def on_item(record) -> None:
                failed[0] += 0 if record.ok else 1
                progress.update(task, advance=1, failed=failed[0])

            summary = run_vet_data(plan, teachers, on_item=on_item,
                                   on_start=lambda done, total: progress.update(task, completed=done))
    except (SourceError, RunFolderError, ModelSpecError, ValueError) as exc:
        _fail(str(exc), EXIT_INPUT)
    except ModelLoadError as exc:
        _fail(str(exc), EXIT_MODEL)
    except EndpointError as exc:
        _fail(f"model server failed: {exc}", EXIT_SERVER)
    return summary


def _teachers(teacher: str, text_teacher: str | None, device: str, dtype: str, concurrency: int):
    """Load the teacher(s) now, so a model that cannot load fails before any item runs."""
    from tools.vet.teacher import Teachers
    from tools.backends.registry import make_perceiver, make_reasoner
    from tools.backends.loading import Placement
    from tools.backends.options import EngineOptions

    options = EngineOptions(perceiver_cache_mb=0, reasoner_cache_mb=0, concurrency=concurrency)
    placement = Placement(device=device, dtype=dtype)
    teachers = Teachers(perceiver=make_perceiver(teacher, placement, options),
                        text=make_reasoner(text_teacher, placement, options) if text_teacher else None)  # fmt: skip
    teachers.perceiver.load()
    if teachers.text is not None:
        teachers.text.load()
    return teachers


def _progress() -> Progress:
    return Progress(TextColumn("{task.description:<10}"), BarColumn(), MofNCompleteColumn(),
                    TextColumn("failed {task.fields[failed]}"), TimeRemainingColumn(), console=err)  # fmt: skip


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
        _fail("--max-steps must be a positive number of steps", EXIT_INPUT)
    if out.exists() and not out.is_dir():
        _fail(f"--out '{out}' is a file; pass a folder for the trained perceiver", EXIT_INPUT)
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
    from tools.backends.loading import ModelLoadError, quiet_transformers
    from tools.backends.spec import ModelSpecError
    from tools.files.folders import NotOurFolderError
    from tools.vet.dataset import DatasetError
    from tools.vet.train import run_training

    quiet_transformers()
    try:
        return run_training(config)
    except ImportError as exc:
        _fail(f"training needs the 'train' extra ({exc}); pip install 'extract-think[train]'", EXIT_INPUT)
    except (DatasetError, ModelSpecError, NotOurFolderError) as exc:
        _fail(str(exc), EXIT_INPUT)
    except ModelLoadError as exc:
        _fail(str(exc), EXIT_MODEL)
