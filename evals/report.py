"""Reports regenerated from stored records alone: the paper's table, cost, paired stats, plots, traces.

`build_report` reads run folders; `write_report` writes report.md, table.csv, table.json, cost.csv,
paired.csv, other_sources.csv, trace_index.csv and two PNG plots into a folder.

Folders that are shards of one run (`xthink eval --shard K/N`, same settings and data) are merged into
one run; other folders are compared side by side. Records made with earlier settings of a resumed run
are reported in rows of their own, never mixed with the current settings' records.
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass, field
from pathlib import Path

from evals.aggregate import (
    HR_COLUMNS,
    TABLE_COLUMNS,
    cost_table,
    high_res_table,
    other_sources_table,
    paired,
    paper_table,
)
from evals.cells import spreadsheet_safe
from evals.records import SampleRecord
from evals.run_store import read_records


@dataclass
class Report:
    table: list[dict] = field(default_factory=list)
    cost: list[dict] = field(default_factory=list)
    paired: list[dict] = field(default_factory=list)
    traces: list[dict] = field(default_factory=list)
    runs: list[str] = field(default_factory=list)
    other_sources: list[dict] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    high_res: list[dict] = field(default_factory=list)  # V*Bench and HR-Bench, when run

    def json_rows(self) -> list[dict]:
        """What `xthink report --json` prints: the paper's table, then the high-resolution table's rows."""
        return self.table + [{"table": "high-res", **row} for row in self.high_res]


class ReportError(ValueError):
    """A folder given to `report` holds no run."""


def build_report(run_dirs: list[Path], seed: int = 0) -> Report:
    report = Report()
    runs = group_runs([Path(d) for d in run_dirs])
    several = len(runs) > 1
    for name, dirs in runs:
        label = name if several else None
        records: list[SampleRecord] = []
        for run_dir in dirs:
            records.extend(run_records(run_dir, report.notes))
            report.runs.append(str(run_dir))
        records = _dedupe(records)
        report.notes.extend(_shard_notes(name, dirs))
        report.table.extend(paper_table(records, label))
        report.other_sources.extend(other_sources_table(records, label))
        report.high_res.extend(high_res_table(records, label))
        report.cost.extend(_labelled(cost_table(records), label))
        report.paired.extend(_labelled(paired(records, seed=seed), label))
        for run_dir in dirs:
            own = [r for r in records if r.trace and (run_dir / r.trace).exists()]
            report.traces.extend(_trace_rows(own, run_dir, label))
    return report


def run_records(run_dir: Path, notes: list[str]) -> list[SampleRecord]:
    """A run folder's records as every report shows them: one per sample and settings, earlier settings
    under regime labels of their own (why: see `_current_labels`)."""
    return _dedupe(_current_labels(read_records(run_dir), _manifest(run_dir), notes, run_dir))


def _manifest(run_dir: Path) -> dict:
    if not run_dir.is_dir():
        raise ReportError(f"'{run_dir}' is not a folder; pass a run folder made by xthink eval")
    if not (run_dir / "records.jsonl").exists():
        raise ReportError(f"'{run_dir}' holds no eval records (records.jsonl); pass a folder made by xthink eval")
    path = run_dir / "run.json"
    return json.loads(path.read_text()) if path.exists() else {}


def group_runs(run_dirs: list[Path]) -> list[tuple[str, list[Path]]]:
    """Shards of one run (same identity but the shard) form one group; every other folder is its own."""
    groups: dict[str, list[Path]] = {}
    for run_dir in run_dirs:
        identity = dict(_manifest(run_dir).get("identity", {}))
        shard = identity.pop("shard", None)
        key = json.dumps(identity, sort_keys=True) if shard else str(run_dir.resolve())
        groups.setdefault(key, []).append(run_dir)
    return [(dirs[0].name if len(dirs) == 1 else f"{dirs[0].name}+{len(dirs) - 1}", dirs) for dirs in groups.values()]


def _shard_notes(name: str, dirs: list[Path]) -> list[str]:
    shards = [_manifest(d).get("identity", {}).get("shard") for d in dirs]
    shards = [tuple(s) for s in shards if s]
    if not shards:
        return []
    count = shards[0][1]
    missing = sorted(set(range(1, count + 1)) - {k for k, _ in shards})
    merged = f"{name}: merged shards {', '.join(f'{k}/{n}' for k, n in sorted(shards))}"
    return [merged + (f"; missing shard(s) {', '.join(f'{k}/{count}' for k in missing)}" if missing else "")]


def _current_labels(records: list[SampleRecord], manifest: dict, notes: list[str], run_dir: Path):
    """Records made with earlier settings than the folder's current ones get a regime label of their own."""
    current = manifest.get("settings_hash") or {}
    out, earlier = [], set()
    for r in records:
        if r.regime in current and r.settings_hash != current[r.regime]:
            earlier.add(r.regime)
            r = r.model_copy(update={"regime": f"{r.regime} (earlier settings {(r.settings_hash or 'unknown')[:6]})"})
        out.append(r)
    if earlier:
        notes.append(f"{run_dir}: records of earlier settings ({', '.join(sorted(earlier))}) are reported in rows "
                     "of their own (the run was resumed with new settings)")
    return out


def _dedupe(records: list[SampleRecord]) -> list[SampleRecord]:
    seen: dict[str, SampleRecord] = {}
    for r in records:
        if r.store_key not in seen or (r.scored and not seen[r.store_key].scored):
            seen[r.store_key] = r
    return list(seen.values())


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


def high_res_columns(rows: list[dict]) -> list[str]:
    lead = ["run"] if rows and "run" in rows[0] else []
    return [*lead, "regime", "n", *HR_COLUMNS]


def to_markdown(report: Report) -> str:
    parts = ["# extract-think evaluation", "", "Runs: " + ", ".join(report.runs), ""]
    parts += [f"Note: {note}" for note in report.notes] + ([""] if report.notes else [])
    if report.table or not report.high_res:
        parts += ["## Accuracy (%)", "", markdown_table(report.table, table_columns(report.table)), ""]
    if report.high_res:
        parts += ["## High-resolution benchmarks: accuracy (%)", "",
                  "V*: per category and over all items; HR-Bench: FSP (single-instance), FCP (cross-instance) and "
                  "all, each the accuracy within an option cycle averaged over the cycles (the official protocol).",
                  "", markdown_table(report.high_res, high_res_columns(report.high_res)), ""]
    if report.other_sources:
        cols = list(dict.fromkeys(c for row in report.other_sources for c in row))
        parts += ["## Other VMCBench sources (--all-sources; not in the paper's table or its n)", "",
                  markdown_table(report.other_sources, cols), ""]
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
        fields = columns or list(rows[0])
        writer = csv.DictWriter(buffer, fieldnames=fields, extrasaction="ignore")
        writer.writerow({f: spreadsheet_safe(f) for f in fields})  # headers too: source names come from data
        for row in rows:
            writer.writerow({k: ("" if v is None else spreadsheet_safe(v)) for k, v in row.items()})
    return buffer.getvalue()


REPORT_FILES = ("report.md", "table.csv", "table.json", "cost.csv", "paired.csv", "high_res.csv", "high_res.json",
                "other_sources.csv", "trace_index.csv", "accuracy_by_category.png", "accuracy_vs_calls.png",
                "index.html")  # everything `xthink report` writes into its folder


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
        "high_res.csv": _csv(report.high_res, high_res_columns(report.high_res)),
        "high_res.json": json.dumps(report.high_res, indent=2),
        "other_sources.csv": _csv(report.other_sources,
                                  list(dict.fromkeys(c for row in report.other_sources for c in row)) or None),
        "trace_index.csv": _csv(report.traces),
    }
    written = []
    for name, text in files.items():
        (out_dir / name).write_text(text)
        written.append(out_dir / name)
    written.append(plot_accuracy_by_category(report.table, out_dir / "accuracy_by_category.png"))
    written.append(plot_accuracy_vs_calls(report.table, report.cost, out_dir / "accuracy_vs_calls.png"))
    return written
