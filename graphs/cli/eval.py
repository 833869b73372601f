"""`xthink eval`, `xthink report`, `xthink export`: runs with live progress; reports and exports of records."""

from __future__ import annotations

import json
import sys
from dataclasses import replace
from pathlib import Path

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from graphs.cli.common import EXIT_INPUT, EXIT_MODEL, err, fail, otel_option, start_telemetry
from graphs.cli.settings import with_settings

_fail = fail


@with_settings(skip=("seed",))
def eval_command(
    bench: list[str] = typer.Option(..., "--bench", help="NAME (hub) or NAME=PATH (parquet/TSV/JSONL file or folder)"),
    mode: list[str] = typer.Option(..., "--mode", help="regime(s) to run: iterative, iterative+look, extract, "
                                   "caption, direct"),
    out: Path = typer.Option(..., "--out", help="run folder (records, traces, report)"),
    split: str | None = typer.Option(None, help="dataset split (vmcbench: dev|test, mmstar: val)"),
    limit: int | None = typer.Option(None, min=1, help="at most N samples per benchmark, stratified"),
    seed: int = typer.Option(0, help="seed of the subsample, sampling and bootstrap"),
    concurrency: int | None = typer.Option(
        None, min=1, help="samples in flight at once (default: 32 on CUDA or a server, 4 on CPU)"),
    shard: str | None = typer.Option(None, help="K/N: run the K-th of N deterministic parts of the items"),
    all_sources: bool = typer.Option(False, "--all-sources", help="VMCBench: also the 14 sources outside the "
                                     "paper's six (reported in a separate section)"),
    no_retry_errors: bool = typer.Option(False, "--no-retry-errors", help="keep error records instead of "
                                         "running those samples again"),
    max_batch: int = typer.Option(32, "--max-batch", min=1, help="in-process: requests per batched generate"),
    reasoner_cache_mb: float = typer.Option(2048, "--reasoner-cache-mb", min=0,
                                            help="in-process KV reuse, MB (0: off)"),
    perceiver_cache_mb: float = typer.Option(2048, "--perceiver-cache-mb", min=0, help="in-process image KV reuse, "
                                             "MB (0: off)"),
    max_in_flight: int | None = typer.Option(None, "--max-in-flight", min=1, help="server: requests in flight "
                                                "per endpoint URL (default: --concurrency)"),
    reasoner: str | None = typer.Option(None, help="reasoner LLM: hub id, local folder, vllm:MODEL or server URL"),
    perceiver: str | None = typer.Option(None, help="perception VLM: hub id, local folder, vllm:MODEL or server URL"),
    pair: str | None = typer.Option(None, help="the paper's pair: small (0.6B/1.7B) or large (1.7B/4B)"),
    device: str = typer.Option("auto", help="auto | cpu | cuda | cuda:N"),
    dtype: str = typer.Option("auto", help="auto | float32 | bfloat16 | float16"),
    restart: bool = typer.Option(False, "--restart", help="wipe a previous run in --out and start over"),
    resume: bool = typer.Option(False, "--resume", help="continue a run in --out even if its settings differ"),
    otel_endpoint: str | None = otel_option(),
    settings=None,  # AskOptions from the generation-setting flags (graphs/cli/settings.py); --seed is eval's own
) -> None:
    """Run benchmarks under one or more regimes, on the same items, resumably.

    `--first-look caption` runs iterative as the regime iterative+look (reported apart from iterative)."""
    from evals.runner import EVAL_REGIMES, LOOK, BenchSpec, EvalPlan, parse_shard
    from evals.store import RunStore
    from graphs.api import InputError, resolve_models
    from tools.backends.options import EngineOptions

    bad = [m for m in mode if m not in EVAL_REGIMES]
    if bad:
        _fail(f"unknown mode '{bad[0]}'; choose from {', '.join(EVAL_REGIMES)}", EXIT_INPUT)
    if settings.first_look == "caption":
        mode = [LOOK if m == "iterative" else m for m in mode]
    # The look is a regime here, not a setting: records keep the settings (and hash) they always had.
    settings = replace(settings, seed=seed, first_look="none")
    try:
        benches = [BenchSpec.parse(b) for b in bench]
        reasoner, perceiver = resolve_models(pair, reasoner, perceiver)
        shard_part = parse_shard(shard) if shard else None
        RunStore.check(out)  # a folder that is not a run's is refused before any loading, --restart or not
    except (ValueError, InputError) as exc:
        _fail(str(exc), EXIT_INPUT)
    start_telemetry(otel_endpoint)
    plan = EvalPlan(
        benches=benches, modes=list(dict.fromkeys(mode)), out=out, reasoner=reasoner,
        perceiver=perceiver, settings=settings, split=split, limit=limit, seed=seed,
        concurrency=concurrency or 1, restart=restart, resume=resume, all_sources=all_sources,
        retry_errors=not no_retry_errors, shard=shard_part,
    )  # fmt: skip
    engine = EngineOptions(max_batch=max_batch, reasoner_cache_mb=reasoner_cache_mb,
                           perceiver_cache_mb=perceiver_cache_mb, concurrency=concurrency or 32,
                           max_in_flight=max_in_flight)  # fmt: skip
    report_dir = _run_eval(plan, device, dtype, engine, explicit_concurrency=concurrency is not None)
    from evals.report import build_report, to_markdown

    Console().print(to_markdown(build_report([plan.out], seed=seed)), markup=False, highlight=False)
    Console().print(f"report written to {report_dir}", markup=False, highlight=False)


def _run_eval(plan, device: str, dtype: str, engine, explicit_concurrency: bool = True) -> str:
    from evals.benchmarks import SchemaError
    from tools.files.data_files import SourceError
    from evals.store import RunStore
    from tools.files.folders import RunFolderError
    from graphs import eval as eval_graph
    from evals.runner import default_concurrency
    from graphs.api import ExtractThink
    from tools.backends.loading import ModelLoadError, quiet_transformers
    from tools.backends.spec import ModelSpecError

    quiet_transformers()
    try:
        agent = ExtractThink(reasoner=plan.reasoner, perceiver=plan.perceiver, device=device, dtype=dtype,
                             engine=engine)
        if not explicit_concurrency:
            plan.concurrency = default_concurrency(agent, device)
        for regime in plan.modes:
            agent.prepare(regime)
        context = eval_graph.EvalContext(plan=plan, store=RunStore(plan.out), agent=agent)
        config = {"recursion_limit": eval_graph.RECURSION_LIMIT, "max_concurrency": plan.concurrency}
        with _progress() as progress:
            tracker = _Tracker(progress)
            for chunk in eval_graph.graph.stream({}, context=context, config=config, stream_mode="updates"):
                tracker.update(chunk)
        return str(plan.out / "report")
    except (ValueError, SchemaError, SourceError, RunFolderError, ModelSpecError) as exc:
        _fail(str(exc), EXIT_INPUT)
    except ModelLoadError as exc:
        _fail(str(exc), EXIT_MODEL)
    return ""


def _progress() -> Progress:
    return Progress(
        TextColumn("{task.description:<10}"), BarColumn(), MofNCompleteColumn(),
        TextColumn("acc {task.fields[acc]}"), TextColumn("failed {task.fields[failed]}"), TimeRemainingColumn(),
        console=err,
    )  # fmt: skip


class _Tracker:
    """Per-regime progress: done/total, running accuracy over scored samples, failures, ETA."""

    def __init__(self, progress: Progress):
        self.progress = progress
        self.tasks: dict[str, int] = {}
        self.stats: dict[str, list[int]] = {}

    def update(self, chunk: dict) -> None:
        for node, update in chunk.items():
            if node == "load" and update:
                totals: dict[str, int] = {}
                for item in update.get("items", []):
                    totals[item.regime] = totals.get(item.regime, 0) + 1
                for regime, total in totals.items():
                    self.stats[regime] = [0, 0, 0]
                    self.tasks[regime] = self.progress.add_task(regime, total=total, acc="-", failed=0)
            elif node == "run_sample" and update:
                for record in update.get("records", []):
                    self._record(record)

    def _record(self, record) -> None:
        scored, correct, failed = self.stats[record.regime]
        if record.scored:
            scored, correct = scored + 1, correct + int(record.correct)
        else:
            failed += 1
        self.stats[record.regime] = [scored, correct, failed]
        acc = f"{100.0 * correct / scored:.1f}%" if scored else "-"
        self.progress.update(self.tasks[record.regime], advance=1, acc=acc, failed=failed)


def report_command(
    dirs: list[Path] = typer.Argument(..., metavar="DIR [DIR...]", help="run folders made by xthink eval"),
    json_out: bool = typer.Option(False, "--json", help="print the table as JSON rows"),
    out: Path | None = typer.Option(None, help="write the report files here (default: DIR/report for one DIR)"),
) -> None:
    """Regenerate every report from the stored records alone."""
    from evals.report import REPORT_FILES, ReportError, build_report, to_markdown, write_report
    from tools.files.folders import NotOurFolderError, claim_folder

    try:
        report = build_report(list(dirs))
        target = out or (dirs[0] / "report" if len(dirs) == 1 else None)
        if out is not None:  # overwrite only a report's own files, in a folder that holds nothing else
            claim_folder(out, "--out", "a report folder", own_names=REPORT_FILES)
    except (ReportError, NotOurFolderError) as exc:
        _fail(str(exc), EXIT_INPUT)
    if target is not None and target.exists() and not target.is_dir():
        _fail(f"'{target}' is a file; pass --out with a folder for the report files", EXIT_INPUT)
    if target is not None:
        write_report(report, target)
        _write_index(list(dirs), target, report)
    if json_out:
        sys.stdout.write(json.dumps(report.json_rows(), indent=2) + "\n")
    else:
        Console().print(to_markdown(report), markup=False, highlight=False)


def _write_index(dirs: list[Path], target: Path, report) -> None:
    """`report/index.html`: the run's page (xthink view), next to the tables and plots just written."""
    from evals.viewer.page import write_page

    write_page(dirs, target / "index.html", report=report, plots_dir=target)


def export_command(
    run: Path = typer.Argument(..., metavar="RUN", help="a run folder made by xthink eval"),
    fmt: str = typer.Option(..., "--format", help="lmms-eval (its --log_samples JSONL: one "
                            "<run>_samples_<benchmark>_<regime>.jsonl per pair, in a folder) or csv (one row per "
                            "record)"),
    out: Path | None = typer.Option(None, "--out", help="folder (lmms-eval) or file (csv); default: "
                                       "RUN/export/lmms-eval or RUN/export/records.csv"),
) -> None:
    """Write a run's records for other tools: lmms-eval's per-sample logs, or a CSV.

    lmms-eval writes one samples file per task; here a task is a (benchmark,
    regime) pair, so no file holds two answers to a document. Each line:
    doc_id, target, resps, filtered_resps (the extracted letter), exact_match,
    doc_hash, input (question and options), plus regime, category, method,
    extraction_calls.
    """
    from evals.export import FORMATS, ExportError, export_csv, export_lmms_eval

    if fmt not in FORMATS:
        _fail(f"unknown --format '{fmt}'; choose {' or '.join(FORMATS)}", EXIT_INPUT)
    try:
        if fmt == "csv":
            written = export_csv(run, out or run / "export" / "records.csv")
        else:
            written = export_lmms_eval(run, out or run / "export" / "lmms-eval")
    except ExportError as exc:
        _fail(str(exc), EXIT_INPUT)
    for path in written:
        Console().print(f"wrote {path}", markup=False, highlight=False)
