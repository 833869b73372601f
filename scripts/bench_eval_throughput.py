"""Measure eval throughput (samples per second) per regime on the tiny models, CPU, at several concurrencies.

Usage: python scripts/bench_eval_throughput.py [--concurrency 1 16] [--per-l2 2] [--regimes caption extract] [--runs 3]
Builds the tiny models and synthetic MMStar + VMCBench files in a temporary folder, then runs the eval
graph once per (regime, concurrency) on the same items (random weights, greedy, short generations) and
prints samples/s, the speed-up over the first concurrency and the process's CPU time per sample (on a shared
machine the steadier figure: it does not count the time other programs held the cores). The engines' KV caches
are emptied before each measurement, so no run profits from an earlier one. Both times run from the start of the
eval graph to its last finished sample (loading and writing the images included, the report left out: it is the
same at every concurrency).

With `--runs N`, each regime is measured N times, its concurrencies taking turns within each run (a shared
machine's slow spell then hits both sides of a speed-up, not one), and a last line per regime gives the
median speed-up of the N runs (each run's rate over that run's rate at the first concurrency).
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
REGIMES = ("iterative", "extract", "caption", "direct")


def main() -> None:
    from evals.synthetic.benchmarks import mmstar_rows, vmcbench_rows, write_parquet
    from graphs.api import ExtractThink
    from tools.backends.loading import quiet_transformers
    from tools.long_lived import freeze_new_models
    from tools.tiny.models import build_all

    parser = argparse.ArgumentParser()
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 16])
    parser.add_argument("--per-l2", type=int, default=4, help="MMStar items per sub-category (18 sub-categories)")
    parser.add_argument("--regimes", nargs="+", choices=REGIMES, default=list(REGIMES))
    parser.add_argument("--runs", type=int, default=1, help="measurements per regime and concurrency (median shown)")
    args = parser.parse_args()
    if min(args.runs, args.per_l2, *args.concurrency) < 1:
        parser.error("--runs, --per-l2 and every --concurrency must be at least 1")
    args.concurrency = list(dict.fromkeys(args.concurrency))  # a repeated level would be measured twice as one
    quiet_transformers()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        models = build_all(root / "models", ("llava_onevision",))
        data = {"mmstar": write_parquet(mmstar_rows(per_l2=args.per_l2), root / "mmstar.parquet"),
                "vmcbench": write_parquet(vmcbench_rows(per_source=args.per_l2 * 2), root / "vmcbench.parquet")}
        agent = ExtractThink(str(models.reasoner), str(models.perceivers["llava_onevision"]), device="cpu")
        for regime in args.regimes:
            agent.load_models(regime)
            freeze_new_models()  # the collector's pass after a load belongs to the load, not to the first run
            speedups: dict[int, list[float]] = {c: [] for c in args.concurrency}
            for run in range(args.runs):
                base = None
                for concurrency in args.concurrency:
                    out = root / f"{regime}-{concurrency}-{run}"
                    n, seconds, cpu = measure(agent, data, out, regime, concurrency)
                    base = base or n / seconds
                    speedups[concurrency].append(n / seconds / base)
                    print(f"{regime:<10} concurrency {concurrency:>3}: {n} samples in {seconds:6.1f}s = "
                          f"{n / seconds:6.2f} samples/s ({n / seconds / base:.1f}x); CPU {1000 * cpu / n:.0f} ms/sample",
                          flush=True)  # fmt: skip
            if args.runs > 1 and len(args.concurrency) > 1:  # a speed-up needs a second level
                print(median_line(regime, speedups), flush=True)


def median_line(regime: str, speedups: dict[int, list[float]]) -> str:
    """The median speed-up at each concurrency over the runs, with every run's figure."""
    parts = [f"concurrency {c}: {statistics.median(values):.1f}x ({', '.join(f'{v:.1f}' for v in values)})"
             for c, values in list(speedups.items())[1:]]  # fmt: skip
    return f"{regime:<10} median of {len(next(iter(speedups.values())))} runs: " + "; ".join(parts)


def measure(agent, data: dict, out: Path, regime: str, concurrency: int) -> tuple[int, float, float]:
    """(samples, wall seconds, CPU seconds) of one eval run, up to its last finished sample."""
    from evals.runner import BenchSpec, EvalPlan
    from evals.run_store import RunStore, read_records
    from graphs import eval as eval_graph
    from graphs.api import AskOptions

    for backend in (agent.reasoner, agent.perceiver):
        backend.engine.cache.clear()
    settings = AskOptions(greedy=True, max_new_tokens=64, thinking_budget=48, perceiver_max_new_tokens=32)
    plan = EvalPlan(benches=[BenchSpec(name, str(path)) for name, path in data.items()], modes=[regime], out=out,
                    reasoner=agent.reasoner.name, perceiver=agent.perceiver.name, settings=settings,
                    concurrency=concurrency)  # fmt: skip
    ctx = eval_graph.EvalContext(plan=plan, store=RunStore(plan.out), agent=agent)
    config = {"recursion_limit": eval_graph.RECURSION_LIMIT, "max_concurrency": concurrency}
    started, cpu_started = time.perf_counter(), time.process_time()
    last, cpu = started, cpu_started
    for update in eval_graph.graph.stream({}, context=ctx, config=config, stream_mode="updates"):
        if "run_sample" in update:
            last, cpu = time.perf_counter(), time.process_time()
    return len(read_records(plan.out)), last - started, cpu - cpu_started


if __name__ == "__main__":
    main()
