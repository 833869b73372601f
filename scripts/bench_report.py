"""`xthink report` time on a synthetic full-paper-size run (10,000 records: 2,500 items x 4 regimes).

The paired comparison's bootstrap intervals dominated this (about 30 s in pure Python); with numpy the
whole report should take seconds. Run: PYTHONPATH=. python scripts/bench_report.py [ITEMS]
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

from evals.report import build_report, write_report
from evals.synthetic_run import write_run


def main(items: int = 2500) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        run = write_run(Path(tmp) / "run", items=items, thinking_chars=0)
        started = time.perf_counter()
        report = build_report([run])
        built = time.perf_counter() - started
        write_report(report, Path(tmp) / "report")
        print(f"{items * 4} records: tables and paired stats in {built:.2f}s, with files and plots in "
              f"{time.perf_counter() - started:.2f}s ({len(report.paired)} paired rows)")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 2500)
