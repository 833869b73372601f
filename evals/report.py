"""Reports regenerated from stored records alone: the paper's table, cost, paired stats, plots, traces.

`build_report` reads run folders; `write_report` writes report.md, table.csv, table.json, cost.csv,
paired.csv, trace_index.csv and two PNG plots into a folder.
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass, field
from pathlib import Path

from evals.aggregate import TABLE_COLUMNS, cost_table, paired, paper_table
from evals.records import SampleRecord
from evals.store import read_records


@dataclass
class Report:
    table: list[dict] = field(default_factory=list)
    cost: list[dict] = field(default_factory=list)
    paired: list[dict] = field(default_factory=list)
    traces: list[dict] = field(default_factory=list)
    runs: list[str] = field(default_factory=list)


class ReportError(ValueError):
    """A folder given to `report` holds no run."""


def build_report(run_dirs: list[Path], seed: int = 0) -> Report:
    report = Report()
    several = len(run_dirs) > 1
    for run_dir in run_dirs:
        run_dir = Path(run_dir)
        if not (run_dir / "records.jsonl").exists():
            raise ReportError(f"'{run_dir}' holds no eval records (records.jsonl); pass a folder made by xthink eval")
        records = read_records(run_dir)
        label = run_dir.name if several else None
        report.runs.append(str(run_dir))
        report.table.extend(paper_table(records, label))
        report.cost.extend(_labelled(cost_table(records), label))
        report.paired.extend(_labelled(paired(records, seed=seed), label))
        report.traces.extend(_trace_rows(records, run_dir, label))
    return report


def _labelled(rows: list[dict], label: str | None) -> list[dict]:
    return [{"run": label, **row} for row in rows] if label else rows


def _trace_rows(records: list[SampleRecord], run_dir: Path, label: str | None) -> list[dict]:
    rows = []
    for r in records:
        row = {"regime": r.regime, "benchmark": r.benchmark, "sample_id": r.sample_id, "status": r.status,
               "correct": r.correct, "method": r.method, "trace": str(run_dir / r.trace) if r.trace else ""}
        rows.append({"run": label, **row} if label else row)
    return rows


def _fmt(value) -> str:
    if value is None:
        return ""
    return f"{value:.1f}" if isinstance(value, float) else str(value)


def markdown_table(rows: list[dict], columns: list[str]) -> str:
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(_fmt(row.get(c)) for c in columns) + " |" for row in rows]
    return "\n".join(lines)


def table_columns(rows: list[dict]) -> list[str]:
    lead = ["run"] if rows and "run" in rows[0] else []
    return [*lead, "regime", "n", *TABLE_COLUMNS]


def to_markdown(report: Report) -> str:
    parts = ["# extract-think evaluation", "", "Runs: " + ", ".join(report.runs), "",
             "## Accuracy (%)", "", markdown_table(report.table, table_columns(report.table)), ""]
    if report.cost:
        cols = [c for c in report.cost[0]]
        parts += ["## Cost per sample (means over scored samples)", "", markdown_table(report.cost, cols), ""]
    if report.paired:
        cols = [c for c in report.paired[0]]
        parts += ["## Iterative vs single-pass on the same items", "",
                  "won/lost: items only iterative / only the baseline got right; p: exact McNemar; "
                  "diff and 95% CI: bootstrap, in accuracy points.", "", markdown_table(report.paired, cols), ""]
    parts += ["## Traces", "", "Every sample's trace file is listed in `trace_index.csv` (sample id -> trace).", ""]
    return "\n".join(parts)


def _csv(rows: list[dict], columns: list[str] | None = None) -> str:
    buffer = io.StringIO()
    if rows or columns:
        writer = csv.DictWriter(buffer, fieldnames=columns or list(rows[0]), extrasaction="ignore")
        writer.writeheader()
        for row in rows:
            writer.writerow({k: ("" if v is None else v) for k, v in row.items()})
    return buffer.getvalue()


def write_report(report: Report, out_dir: Path) -> list[Path]:
    from evals.plots import plot_accuracy_by_category, plot_accuracy_vs_calls

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    files = {
        "report.md": to_markdown(report),
        "table.csv": _csv(report.table, table_columns(report.table)),
        "table.json": json.dumps(report.table, indent=2),
        "cost.csv": _csv(report.cost),
        "paired.csv": _csv(report.paired),
        "trace_index.csv": _csv(report.traces),
    }
    written = []
    for name, text in files.items():
        (out_dir / name).write_text(text)
        written.append(out_dir / name)
    written.append(plot_accuracy_by_category(report.table, out_dir / "accuracy_by_category.png"))
    written.append(plot_accuracy_vs_calls(report.table, report.cost, out_dir / "accuracy_vs_calls.png"))
    return written
