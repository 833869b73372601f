"""scripts/bench_eval_throughput.py: the eval benchmark the speed claims rest on runs, and `--runs` gives medians.

No timing is asserted (the CI machine is shared): that every measurement ran every sample, that each run's
speed-up is over that run's own first concurrency, and that the median line holds the runs' figures.
"""

from __future__ import annotations

import os
import re
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def run_bench(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1"}
    return subprocess.run([sys.executable, "scripts/bench_eval_throughput.py", *args], check=False, cwd=ROOT,
                          env=env, capture_output=True, text=True, timeout=600)  # fmt: skip


def test_runs_alternate_concurrencies_and_end_with_the_median_speedup():
    done = run_bench("--regimes", "caption", "--concurrency", "1", "2", "--per-l2", "1", "--runs", "2")
    assert done.returncode == 0, done.stderr[-3000:]
    lines = done.stdout.strip().splitlines()
    measured = [re.match(r"caption +concurrency +(\d+): (\d+) samples .* \(([\d.]+)x\)", line) for line in lines[:4]]
    assert all(measured), lines
    assert [int(m.group(1)) for m in measured] == [1, 2, 1, 2], "each run measures every concurrency in turn"
    assert {int(m.group(2)) for m in measured} == {30}, "18 MMStar + 12 VMCBench items, every one recorded"
    assert [m.group(3) for m in measured[::2]] == ["1.0", "1.0"], "a run's speed-up is over its own first level"
    median = re.fullmatch(r"caption +median of 2 runs: concurrency 2: ([\d.]+)x \(([\d.]+), ([\d.]+)\)", lines[4])
    assert median, lines[4]
    runs = [float(median.group(2)), float(median.group(3))]
    assert runs == [float(m.group(3)) for m in measured[1::2]]
    assert abs(float(median.group(1)) - statistics.median(runs)) <= 0.101  # both sides printed to 0.1
    assert len(lines) == 5


def test_a_bad_count_is_refused_with_its_name():
    done = run_bench("--runs", "0")
    assert done.returncode == 2 and "--runs" in done.stderr and "Traceback" not in done.stderr
