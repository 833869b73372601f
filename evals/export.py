"""Export a run's records for other tools: lmms-eval's `--log_samples` JSONL, or one CSV.

lmms-eval writes one `<date>_samples_<task>.jsonl` per task, one line per document with `doc_id`, `doc`,
`target`, `arguments`, `resps` (raw outputs, one list per request), `filtered_resps` (after the task's
filters), `token_counts`, `doc_hash` and the task's per-sample metrics (read from lmms_eval/evaluator.py
and loggers/evaluation_tracker.py). Here a "task" is one (benchmark, regime) pair, written as
`samples_<benchmark>_<regime>.jsonl`; the metric is `exact_match` (1.0 when the extracted letter equals the
gold one), and extract-think's own fields (`regime`, `status`, `method`, `extraction_calls`, ...) ride
along. The question and options come from each record's trace.
"""

from __future__ import annotations

import csv
import hashlib
import json
import re
from pathlib import Path

from agent.prompts import format_question
from evals.records import SampleRecord
from evals.store import read_records

FORMATS = ("lmms-eval", "csv")


class ExportError(ValueError):
    """The run folder or the output path cannot be used; the message says what to pass."""


def load_run(run_dir: Path) -> list[SampleRecord]:
    if not (Path(run_dir) / "records.jsonl").is_file():
        raise ExportError(f"'{run_dir}' is not a run folder (no records.jsonl); pass a folder made by xthink eval")
    return read_records(Path(run_dir))


def question_of(run_dir: Path, record: SampleRecord) -> tuple[str, list[str]]:
    """The question and options a record answered, from its trace ('' and [] when there is none)."""
    path = Path(run_dir) / record.trace if record.trace else None
    if path is None or not path.is_file():
        return "", []
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return "", []
    return str(data.get("question", "")), [str(o) for o in data.get("options", [])]


def lmms_eval_line(record: SampleRecord, question: str, options: list[str]) -> dict:
    doc = {"question": question, "options": options, "category": record.category,
           "l2_category": record.l2_category, "answer": record.gold}
    text = format_question(question, options) if question else ""
    return {
        "doc_id": int(record.sample_id) if record.sample_id.isdigit() else record.sample_id,
        "doc": doc,
        "target": record.gold,
        "arguments": [text],
        "resps": [[record.raw_output]],
        "filtered_resps": [record.pred or ""],
        "token_counts": [None],
        "doc_hash": hashlib.sha256(json.dumps(doc, indent=2, ensure_ascii=False).encode()).hexdigest(),
        "input": text,
        "exact_match": 1.0 if record.correct else 0.0,
        "regime": record.regime, "benchmark": record.benchmark, "status": record.status, "error": record.error,
        "method": record.method, "extraction_calls": record.extraction_calls,
    }  # fmt: skip


def export_lmms_eval(run_dir: Path, out_dir: Path) -> list[Path]:
    """One `samples_<benchmark>_<regime>.jsonl` per pair under `out_dir`; returns the files written."""
    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise ExportError(f"--out '{out_dir}' is a file; lmms-eval's format is a folder of JSONL files per task")
    groups: dict[str, list[str]] = {}
    for record in load_run(run_dir):
        line = lmms_eval_line(record, *question_of(run_dir, record))
        name = f"samples_{_slug(record.benchmark)}_{_slug(record.regime)}.jsonl"
        groups.setdefault(name, []).append(json.dumps(line, ensure_ascii=False))
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for name, lines in sorted(groups.items()):
        (out_dir / name).write_text("\n".join(lines) + "\n", encoding="utf-8")
        written.append(out_dir / name)
    return written


def export_csv(run_dir: Path, out_file: Path) -> list[Path]:
    """Every record as one CSV row (all SampleRecord fields, plus the question and options)."""
    out_file = Path(out_file)
    if out_file.is_dir():
        raise ExportError(f"--out '{out_file}' is a folder; pass the CSV file to write")
    records = load_run(run_dir)
    fields = [*SampleRecord.model_fields, "question", "options"]
    out_file.parent.mkdir(parents=True, exist_ok=True)
    with out_file.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=fields)
        writer.writeheader()
        for record in records:
            question, options = question_of(run_dir, record)
            row = {k: _cell(v) for k, v in record.model_dump().items()}
            writer.writerow({**row, "question": question, "options": json.dumps(options, ensure_ascii=False)})
    return [out_file]


def _cell(value):
    return json.dumps(value) if isinstance(value, (list, dict)) else ("" if value is None else value)


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", text).strip("-") or "x"
