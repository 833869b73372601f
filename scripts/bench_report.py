"""Time the paired bootstrap and `xthink report` on a synthetic full-paper-size run.

The paired comparison's bootstrap intervals dominated the report (about 30 s in pure Python); with numpy
the whole report should take seconds. Prints the seconds of: `bootstrap_diff` on 1,000 and 10,000 pairs
(and the former pure-Python loop on 1,000, for comparison), then `build_report` and `write_report` on a run
folder of ITEMS x 4 regimes records (default 2,500 items: 10,000 records) with real traces.

Run: PYTHONPATH=. python scripts/bench_report.py [ITEMS]
"""

from __future__ import annotations

import random
import sys
import tempfile
import time
from pathlib import Path

from evals.report import build_report, write_report
from evals.stats import bootstrap_diff
from evals.synthetic.run_folder import write_run


def python_bootstrap(pairs: list[tuple[bool, bool]], seed: int = 0, rounds: int = 2000) -> None:
    """The loop bootstrap_diff replaced: one Python-level draw per item per round."""
    n = len(pairs)
    diffs = [int(a) - int(b) for a, b in pairs]
    rng = random.Random(seed)
    sorted(sum(diffs[rng.randrange(n)] for _ in range(n)) / n for _ in range(rounds))


def timed(fn, *args) -> float:
    started = time.perf_counter()
    fn(*args)
    return time.perf_counter() - started


def bench_bootstrap() -> None:
    rng = random.Random(0)
    bootstrap_diff([(True, False)])  # warm-up: numpy's import is not the bootstrap's cost
    for n in (1_000, 10_000):
        pairs = [(rng.random() < 0.6, rng.random() < 0.5) for _ in range(n)]
        print(f"bootstrap_diff, {n:,} pairs, 2,000 rounds: {timed(bootstrap_diff, pairs):.3f}s")
    pairs = [(rng.random() < 0.6, rng.random() < 0.5) for _ in range(1_000)]
    print(f"pure-Python loop (before), 1,000 pairs: {timed(python_bootstrap, pairs):.3f}s")


def bench_report(items: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        run = write_run(Path(tmp) / "run", items=items, thinking_chars=0)
        started = time.perf_counter()
        report = build_report([run])
        built = time.perf_counter() - started
        write_report(report, Path(tmp) / "report")
        print(f"build_report, {items * 4:,} records: {built:.2f}s ({len(report.paired)} paired rows); "
              f"with write_report (files and plots): {time.perf_counter() - started:.2f}s")


def main(items: int = 2500) -> None:
    bench_bootstrap()
    bench_report(items)


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 2500)
