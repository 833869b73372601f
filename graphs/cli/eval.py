"""`xthink eval`: benchmarks under one or more regimes, resumably, with a live bar per regime.

The command checks every flag and the run folder before any model loads (`_plan`), runs the eval graph
(graphs/eval.py) while the bar follows its updates (`_Tracker`), then prints the report regenerated from the
records. `xthink report` and `xthink export` read those records again (graphs/cli/report.py, export.py).
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import typer
from rich.console import Console

from graphs.cli import flags
from graphs.cli.common import EXIT_INPUT, EXIT_MODEL, fail, progress_bar, start_telemetry
from graphs.cli.settings import with_settings


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
    max_batch: int = flags.engine("max_batch", "in-process: requests per batched generate", min=1),
    reasoner_cache_mb: float = flags.engine("reasoner_cache_mb", "in-process KV reuse, MB (0: off)", min=0),
    perceiver_cache_mb: float = flags.engine("perceiver_cache_mb", "in-process image KV reuse, MB (0: off)", min=0),
    max_in_flight: int | None = flags.engine("max_in_flight", "server: requests in flight per endpoint URL "
                                              "(default: --concurrency)", min=1),
    reasoner: str | None = flags.reasoner(),
    perceiver: str | None = flags.perceiver(),
    pair: str | None = flags.pair(),
    device: str = flags.device(),
    dtype: str = flags.dtype(),
    restart: bool = typer.Option(False, "--restart", help="wipe a previous run in --out and start over"),
    resume: bool = typer.Option(False, "--resume", help="continue a run in --out even if its settings differ"),
    otel_endpoint: str | None = flags.otel(),
    settings=None,  # AskOptions from the generation-setting flags (graphs/cli/settings.py); --seed is eval's own
) -> None:
    """Run benchmarks under one or more regimes, on the same items, resumably.

    `--first-look caption` runs iterative as the regime iterative+look (reported apart from iterative)."""
    from tools.backends.options import EngineOptions

    modes, settings = _regimes(mode, settings, seed)
    plan = _plan(bench, modes, out, (pair, reasoner, perceiver), shard, settings, split=split, limit=limit, seed=seed,
                 concurrency=concurrency or 1, restart=restart, resume=resume, all_sources=all_sources,
                 retry_errors=not no_retry_errors)  # fmt: skip
    start_telemetry(otel_endpoint)
    engine = EngineOptions(max_batch=max_batch, reasoner_cache_mb=reasoner_cache_mb,
                           perceiver_cache_mb=perceiver_cache_mb, concurrency=concurrency or 32,
                           max_in_flight=max_in_flight)  # fmt: skip
    report_dir = _run_eval(plan, device, dtype, engine, explicit_concurrency=concurrency is not None)
    _print_report(plan, report_dir)


def _regimes(modes: list[str], settings, seed: int):
    """The regimes to run, each once, and the settings they share. The look is a regime here, not a setting
    (`--first-look caption` turns iterative into iterative+look): records keep the settings, and the settings
    hash, they always had."""
    from evals.runner import EVAL_REGIMES, LOOK

    bad = [m for m in modes if m not in EVAL_REGIMES]
    if bad:
        fail(f"unknown mode '{bad[0]}'; choose from {', '.join(EVAL_REGIMES)}", EXIT_INPUT)
    if settings.first_look == "caption":
        modes = [LOOK if m == "iterative" else m for m in modes]
    return list(dict.fromkeys(modes)), replace(settings, seed=seed, first_look="none")


def _plan(bench: list[str], modes: list[str], out: Path, models: tuple, shard: str | None, settings, **rest):
    """The EvalPlan, every flag checked before any loading: a bad one is one line and exit 2, and so is a
    folder that is not a run's (--restart or not)."""
    from evals.runner import BenchSpec, EvalPlan, parse_shard
    from evals.run_store import RunStore
    from graphs.api import InputError, resolve_models

    try:
        benches = [BenchSpec.parse(b) for b in bench]
        reasoner, perceiver = resolve_models(*models)
        shard_part = parse_shard(shard) if shard else None
        RunStore.check(out)
    except (ValueError, InputError) as exc:
        fail(str(exc), EXIT_INPUT)
    return EvalPlan(benches=benches, modes=modes, out=out, reasoner=reasoner, perceiver=perceiver,
                    settings=settings, shard=shard_part, **rest)  # fmt: skip


def _run_eval(plan, device: str, dtype: str, engine, explicit_concurrency: bool = True) -> str:
    """Load the models, run the eval graph with a live bar; returns the report folder."""
    from evals.benchmarks import SchemaError
    from evals.runner import default_concurrency
    from evals.run_store import RunStore
    from graphs import eval as eval_graph
    from graphs.api import ExtractThink
    from tools.backends.loading import ModelLoadError, quiet_transformers
    from tools.backends.spec import ModelSpecError
    from tools.files.data_files import SourceError
    from tools.files.folders import RunFolderError

    quiet_transformers()
    try:
        agent = ExtractThink(reasoner=plan.reasoner, perceiver=plan.perceiver, device=device, dtype=dtype,
                             engine=engine)
        if not explicit_concurrency:
            plan.concurrency = default_concurrency(agent, device)
        for regime in plan.modes:
            agent.load_models(regime)
        context = eval_graph.EvalContext(plan=plan, store=RunStore(plan.out), agent=agent)
        config = {"recursion_limit": eval_graph.RECURSION_LIMIT, "max_concurrency": plan.concurrency}
        with progress_bar("acc", "failed") as progress:
            tracker = _Tracker(progress)
            for chunk in eval_graph.graph.stream({}, context=context, config=config, stream_mode="updates"):
                tracker.update(chunk)
        return str(plan.out / "report")
    except (ValueError, SchemaError, SourceError, RunFolderError, ModelSpecError) as exc:
        fail(str(exc), EXIT_INPUT)
    except ModelLoadError as exc:
        fail(str(exc), EXIT_MODEL)
    return ""


def _print_report(plan, report_dir: str) -> None:
    """The run's report, regenerated from its records as `xthink report` would, and where its files are."""
    from evals.report import build_report, to_markdown

    Console().print(to_markdown(build_report([plan.out], seed=plan.seed)), markup=False, highlight=False)
    Console().print(f"report written to {report_dir}", markup=False, highlight=False)


class _Tracker:
    """Per-regime progress: done/total, running accuracy over scored samples, failures, ETA."""

    def __init__(self, progress):
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
