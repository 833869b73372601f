"""`xthink vet-data`: VET training pairs from VQA data with a teacher VLM, resumably (visual extraction tuning).

A thin typer layer over tools/vet/run.py; heavy imports (torch, transformers) happen inside the command so
`xthink --help` stays fast. Errors are one line: exit 2 for bad input, 3 for a model that cannot load, 4 for a
model server that failed. `xthink vet-train` (graphs/cli/vet_train.py) trains a perceiver on the pairs.
"""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console

from graphs.cli import flags
from graphs.cli.common import EXIT_INPUT, EXIT_MODEL, EXIT_SERVER, fail, progress_bar


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
    dtype: str = flags.dtype(),
    restart: bool = typer.Option(False, "--restart", help="wipe the records in --out and start over"),
) -> None:
    """Generate VET training pairs with a teacher VLM (resumable: rerun the same command to continue)."""
    from tools.files.folders import RunFolderError
    from tools.vet.run import check_folder
    from tools.vet.teacher import VetSettings

    if style not in ("paper", "iterative"):
        fail(f"unknown --style '{style}'; choose paper or iterative", EXIT_INPUT)
    try:
        check_folder(out)  # a folder that is not ours is refused before the teachers load, --restart or not
    except RunFolderError as exc:
        fail(str(exc), EXIT_INPUT)
    settings = VetSettings(style=style, statement_tokens=statement_tokens,  # type: ignore[arg-type]
                           description_tokens=description_tokens)  # fmt: skip
    summary = _run_vet_data(source, teacher, text_teacher, out, limit, settings, concurrency, device, dtype, restart)
    Console().print(
        f"{summary.ok} pairs in {out} ({summary.ok - summary.done_before} new), {summary.failed} failed (see "
        f"records.jsonl; a rerun retries them); {len(summary.shards)} parquet shard(s) in {out / 'data'}",
        markup=False, highlight=False, soft_wrap=True,
    )  # fmt: skip


def _run_vet_data(source, teacher, text_teacher, out, limit, settings, concurrency, device, dtype, restart):
    """Load the source and the teachers, then run every item with a live bar; a user's mistake is one line."""
    from tools.backends.http_client import EndpointError
    from tools.backends.loading import ModelLoadError, quiet_transformers
    from tools.backends.spec import ModelSpecError
    from tools.files.data_files import SourceError
    from tools.files.folders import RunFolderError
    from tools.vet.run import VetPlan, run_vet_data
    from tools.vet.sources import load_source

    quiet_transformers()
    try:
        loaded = load_source(source, limit)
        plan = VetPlan(source=loaded, out=out, teacher=teacher, text_teacher=text_teacher, settings=settings,
                       concurrency=concurrency, restart=restart)  # fmt: skip
        teachers = _teachers(teacher, text_teacher, device, dtype, concurrency)
        with progress_bar("failed") as progress:
            task = progress.add_task("vet-data", total=len(loaded.items), failed=0)
            failed = [0]

            def on_item(record) -> None:
                failed[0] += 0 if record.ok else 1
                progress.update(task, advance=1, failed=failed[0])

            summary = run_vet_data(plan, teachers, on_item=on_item,
                                   on_start=lambda done, total: progress.update(task, completed=done))
    except (SourceError, RunFolderError, ModelSpecError, ValueError) as exc:
        fail(str(exc), EXIT_INPUT)
    except ModelLoadError as exc:
        fail(str(exc), EXIT_MODEL)
    except EndpointError as exc:
        fail(f"model server failed: {exc}", EXIT_SERVER)
    return summary


def _teachers(teacher: str, text_teacher: str | None, device: str, dtype: str, concurrency: int):
    """Load the teacher(s) now, so a model that cannot load fails before any item runs."""
    from tools.backends.loading import Placement
    from tools.backends.options import EngineOptions
    from tools.backends.registry import make_perceiver, make_reasoner
    from tools.vet.teacher import Teachers

    options = EngineOptions(perceiver_cache_mb=0, reasoner_cache_mb=0, concurrency=concurrency)
    placement = Placement(device=device, dtype=dtype)
    teachers = Teachers(perceiver=make_perceiver(teacher, placement, options),
                        text=make_reasoner(text_teacher, placement, options) if text_teacher else None)  # fmt: skip
    teachers.perceiver.load()
    if teachers.text is not None:
        teachers.text.load()
    return teachers
