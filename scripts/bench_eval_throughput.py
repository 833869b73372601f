"""Measure eval throughput (samples per second) per regime on the tiny models, CPU, at several concurrencies.

Usage: python scripts/bench_eval_throughput.py [--concurrency 1 16] [--per-l2 2] [--regimes caption extract]
Builds the tiny models and synthetic MMStar + VMCBench files in a temporary folder, then runs the eval
graph once per (regime, concurrency) on the same items (random weights, greedy, short generations) and
prints samples/s, the speed-up over the first concurrency and the process's CPU time per sample (on a shared
machine the steadier figure: it does not count the time other programs held the cores). The engines' KV caches
are emptied before each measurement, so no run profits from an earlier one. Both times run from the start of the
eval graph to its last finished sample (loading and writing the images included, the report left out: it is the
same at every concurrency).
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
REGIMES = ("iterative", "extract", "caption", "direct")


def main() -> None:
    from evals.synthetic.benchmarks import mmstar_rows, vmcbench_rows, write_parquet
    from graphs.api import ExtractThink
    from tools.backends.loading import quiet_transformers
    from tools.tiny.models import build_all

    parser = argparse.ArgumentParser()
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 16])
    parser.add_argument("--per-l2", type=int, default=4, help="MMStar items per sub-category (18 sub-categories)")
    parser.add_argument("--regimes", nargs="+", choices=REGIMES, default=list(REGIMES))
    args = parser.parse_args()
    quiet_transformers()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        models = build_all(root / "models", ("llava_onevision",))
        data = {"mmstar": write_parquet(mmstar_rows(per_l2=args.per_l2), root / "mmstar.parquet"),
                "vmcbench": write_parquet(vmcbench_rows(per_source=args.per_l2 * 2), root / "vmcbench.parquet")}
        agent = ExtractThink(str(models.reasoner), str(models.perceivers["llava_onevision"]), device="cpu")
        rates: dict[tuple[str, int], float] = {}
        for regime in args.regimes:
            agent.load_models(regime)
            for concurrency in args.concurrency:
                n, seconds, cpu = measure(agent, data, root / f"{regime}-{concurrency}", regime, concurrency)
                rates[(regime, concurrency)] = n / seconds
                base = rates[(regime, args.concurrency[0])]
                print(f"{regime:<10} concurrency {concurrency:>3}: {n} samples in {seconds:6.1f}s = "
                      f"{n / seconds:6.2f} samples/s ({n / seconds / base:.1f}x); CPU {1000 * cpu / n:.0f} ms/sample",
                      flush=True)  # fmt: skip


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
