"""Export a run's records for other tools: lmms-eval's `--log_samples` JSONL, or one CSV.

What lmms-eval writes (read in lmms_eval/evaluator.py, evaluate(): the `example` dict, and
lmms_eval/loggers/evaluation_tracker.py, save_results_samples(); tags v0.6.1 and v0.7.2): one
`<date>_samples_<task>.jsonl` per task, one line per document with `doc_id`, `target` (a string),
`resps` (raw outputs), `filtered_resps` (after the task's filters, the text that was scored), `doc_hash`
(sha256 of the doc as indented JSON), `input` (the prompt: the request's first argument), `token_counts`
(v0.7) and the task's per-sample metrics as top-level keys. Its readers (the `--baseline` loader) key
lines by `doc_id` and take the first key with "score" in its name, else compare `filtered_resps[0]` to
`target`.

Choices here: a "task" is one (benchmark, regime) pair, written as `<run>_samples_<benchmark>_<regime>.jsonl`
(the run folder's name in place of lmms-eval's date, so its tools' `*_samples_*.jsonl` patterns find it)
in the output folder, so one file never holds two answers to a document. The nesting is that of
lmms-eval's generate_until files before v0.7 flattened them: `resps` = [[raw output]], `filtered_resps`
= [extracted letter, or "" when none was found]; every reader of either version accepts it. The metric is
`exact_match` (1.0 when the letter equals the gold one). `doc` (question, options, categories, gold) and
`arguments` ([input]) are kept, as in lmms-eval's in-memory samples (it drops them on disk);
extract-think's own fields (`regime`, `category`, `status`, `method`, `extraction_calls`, ...) ride along.
The question and options come from each record's trace; a record without one gets an empty `input`.
Records of earlier settings of a resumed run (run.json's `settings_hash`) go to a task of their own,
`<regime>-earlier-<hash>`, as `xthink report` reports them in rows of their own.
"""

from __future__ import annotations

import csv
import hashlib
import json
import re
from pathlib import Path

from agent.prompts import format_question
from evals.cells import spreadsheet_safe
from evals.records import SampleRecord
from evals.run_store import read_records
from tools.files.folders import NotOurFolderError, claim_file, claim_folder, starts_with

FORMATS = ("lmms-eval", "csv")


class ExportError(ValueError):
    """The run folder or the output path cannot be used; the message says what to pass."""


def load_run(run_dir: Path) -> list[SampleRecord]:
    if not (Path(run_dir) / "records.jsonl").is_file():
        raise ExportError(f"'{run_dir}' is not a run folder (no records.jsonl); pass a folder made by xthink eval")
    try:
        return read_records(Path(run_dir))
    except ValueError as exc:  # a line that is not a record (pydantic's ValidationError is a ValueError)
        first = str(exc).splitlines()[0]
        raise ExportError(f"'{run_dir}/records.jsonl' holds a line that is not an eval record: {first}") from None


def _current_settings(run_dir: Path) -> dict[str, str]:
    """run.json's settings hash per regime ({} when absent or unreadable: then nothing counts as earlier)."""
    try:
        manifest = json.loads((Path(run_dir) / "run.json").read_text())
    except (OSError, ValueError):
        return {}
    current = manifest.get("settings_hash") if isinstance(manifest, dict) else None
    return current if isinstance(current, dict) else {}


def question_of(run_dir: Path, record: SampleRecord) -> tuple[str, list[str]]:
    """The question and options a record answered, from its trace ('' and [] when there is none)."""
    path = Path(run_dir) / record.trace if record.trace else None
    if path is None or not path.is_file():
        return "", []
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return "", []
    if not isinstance(data, dict):
        return "", []
    options = data.get("options")
    return str(data.get("question") or ""), [str(o) for o in options] if isinstance(options, list) else []


def lmms_eval_line(record: SampleRecord, question: str, options: list[str]) -> dict:
    """One sample in lmms-eval's log_samples layout, plus extract-think's fields."""
    doc = {"question": question, "options": options, "category": record.category,
           "l2_category": record.l2_category, "answer": record.gold}
    text = format_question(question, options) if question else ""
    return {
        "doc_id": _doc_id(record.sample_id),
        "doc": doc,
        "target": record.gold,
        "arguments": [text],
        "resps": [[record.raw_output]],
        "filtered_resps": [record.pred or ""],
        "token_counts": [{"output_tokens": record.thinking_tokens + record.visible_tokens,
                          "reasoning_tokens": record.thinking_tokens}],
        "doc_hash": hashlib.sha256(json.dumps(doc, indent=2, ensure_ascii=False).encode()).hexdigest(),
        "input": text,
        "exact_match": 1.0 if record.correct else 0.0,
        "regime": record.regime, "benchmark": record.benchmark, "category": record.category,
        "l2_category": record.l2_category, "status": record.status, "error": record.error,
        "method": record.method, "extraction_calls": record.extraction_calls, "settings_hash": record.settings_hash,
    }  # fmt: skip


def _doc_id(sample_id: str) -> int | str:
    """lmms-eval's doc ids are ints; a sample id is one only when it reads back the same ("007" stays text)."""
    return int(sample_id) if sample_id.isdigit() and str(int(sample_id)) == sample_id else sample_id


def task_file(record: SampleRecord, current: dict[str, str], prefix: str) -> str:
    """`<run>_samples_<benchmark>_<regime>.jsonl` (lmms-eval's `{prefix}_samples_{task}.jsonl`, which its TUI and
    job scheduler look for); a record of earlier settings than run.json's gets a task of its own."""
    regime = record.regime
    if regime in current and record.settings_hash != current[regime]:
        regime = f"{regime}-earlier-{(record.settings_hash or 'unknown')[:6]}"
    return f"{prefix}_samples_{_slug(record.benchmark)}_{_slug(regime)}.jsonl"


def export_lmms_eval(run_dir: Path, out_dir: Path) -> list[Path]:
    """One `<run>_samples_<benchmark>_<regime>.jsonl` per pair under `out_dir`; returns the files written."""
    records = load_run(run_dir)
    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise ExportError(f"--out '{out_dir}' is a file; lmms-eval's format is a folder of JSONL files per task")
    try:  # overwrite only samples files, in a folder that holds nothing else
        claim_folder(out_dir, "--out", "an lmms-eval export folder", own_names=("*_samples_*.jsonl",))
    except NotOurFolderError as exc:
        raise ExportError(str(exc)) from None
    current = _current_settings(run_dir)
    groups: dict[str, list[str]] = {}
    for record in records:
        line = lmms_eval_line(record, *question_of(run_dir, record))
        prefix = _slug(Path(run_dir).resolve().name)
        groups.setdefault(task_file(record, current, prefix), []).append(json.dumps(line, ensure_ascii=False))
    _make_dir(out_dir)
    written = []
    for name, lines in sorted(groups.items()):
        (out_dir / name).write_text("\n".join(lines) + "\n", encoding="utf-8")
        written.append(out_dir / name)
    return written


def export_csv(run_dir: Path, out_file: Path) -> list[Path]:
    """Every record as one CSV row (all SampleRecord fields, plus the question and options)."""
    records = load_run(run_dir)
    out_file = Path(out_file)
    if out_file.is_dir():
        raise ExportError(f"--out '{out_file}' is a folder; pass the CSV file to write")
    fields = [*SampleRecord.model_fields, "question", "options"]
    header = ",".join(fields).encode()
    try:  # overwrite only a records CSV written before (same header), never a user's file
        claim_file(out_file, "--out", "a records CSV", lambda p: starts_with(p, header))
    except NotOurFolderError as exc:
        raise ExportError(str(exc)) from None
    _make_dir(out_file.parent)
    with out_file.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=fields)
        writer.writeheader()
        for record in records:
            question, options = question_of(run_dir, record)
            row = {k: _cell(v) for k, v in record.model_dump().items()}
            options_cell = json.dumps(options, ensure_ascii=False)
            writer.writerow({**row, "question": spreadsheet_safe(question), "options": options_cell})
    return [out_file]


def _make_dir(path: Path) -> None:
    """A folder to write into; a file in the way is the user's mistake, told in one line."""
    try:
        path.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError) as exc:
        raise ExportError(f"cannot create the folder '{path}': a file is in the way ({exc.strerror})") from None


def _cell(value):
    """A CSV cell: lists and dicts as JSON, None empty, text a spreadsheet would run as a formula defused."""
    return spreadsheet_safe(json.dumps(value) if isinstance(value, (list, dict)) else ("" if value is None else value))


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", text).strip("-") or "x"
