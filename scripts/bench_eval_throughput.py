"""Measure eval throughput (samples per second) per regime on the tiny models, CPU.

Usage: python scripts/bench_eval_throughput.py [--concurrency N]
Builds the tiny models and synthetic MMStar + VMCBench files in a temporary folder, then runs the eval
graph once per regime (random weights, greedy, short generations) and prints samples/s for each.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")


def main() -> None:
    from evals.runner import BenchSpec, EvalPlan
    from evals.store import RunStore, read_records
    from evals.synthetic import write_all
    from graphs import eval as eval_graph
    from graphs.api import AskOptions, ExtractThink
    from tools.backends.loading import quiet_transformers
    from tools.tiny_models import build_all

    parser = argparse.ArgumentParser()
    parser.add_argument("--concurrency", type=int, default=1)
    args = parser.parse_args()
    quiet_transformers()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        models = build_all(root / "models", ("llava_onevision",))
        data = write_all(root / "data")
        agent = ExtractThink(str(models.reasoner), str(models.perceivers["llava_onevision"]), device="cpu")
        settings = AskOptions(greedy=True, max_new_tokens=64, thinking_budget=48, perceiver_max_new_tokens=32)
        for regime in ("iterative", "extract", "caption", "direct"):
            agent.prepare(regime)
            plan = EvalPlan(benches=[BenchSpec("mmstar", str(data["mmstar"])),
                                     BenchSpec("vmcbench", str(data["vmcbench"]))],
                            modes=[regime], out=root / regime, reasoner=agent.reasoner.name,
                            perceiver=agent.perceiver.name, settings=settings, concurrency=args.concurrency)
            ctx = eval_graph.EvalContext(plan=plan, store=RunStore(plan.out), agent=agent)
            config = {"recursion_limit": eval_graph.RECURSION_LIMIT, "max_concurrency": args.concurrency}
            started = time.perf_counter()
            eval_graph.graph.invoke({}, context=ctx, config=config)
            seconds = time.perf_counter() - started
            n = len(read_records(plan.out))
            print(f"{regime:<10} {n} samples in {seconds:.1f}s = {n / seconds:.2f} samples/s "
                  f"(concurrency {args.concurrency}, report included)")


if __name__ == "__main__":
    main()
