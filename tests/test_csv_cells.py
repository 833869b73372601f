"""CSV files a spreadsheet opens: text that would run as a formula is defused, numbers stay numbers."""

from __future__ import annotations

import csv
import json

import pytest
from typer.testing import CliRunner

from evals.cells import spreadsheet_safe
from evals.synthetic.run_folder import write_run
from graphs.cli.app import app

runner = CliRunner()
HOSTILE_ID = "=HYPERLINK(\"http://x\",\"y\")"


@pytest.mark.parametrize("text", ["=1+1", "+1+2", "-2+3", "@SUM(A1)", "\tcmd", "\r=1", "-cmd|' /C calc'!A0"])
def test_formula_text_gets_an_apostrophe(text):
    assert spreadsheet_safe(text) == "'" + text


@pytest.mark.parametrize("value", [-0.5, 3, "-0.5", "-7", "+1e-3", "red", "", "a=b", None, True])
def test_numbers_and_plain_text_stay(value):
    assert spreadsheet_safe(value) == value


@pytest.fixture()
def hostile_run(tmp_path):
    """A run whose data and model output start like formulas: a sample id, the raw output, the question."""
    root = write_run(tmp_path / "run", items=2, regimes=("direct",))
    lines = [json.loads(line) for line in (root / "records.jsonl").read_text().splitlines()]
    lines[0].update(sample_id=HOSTILE_ID, raw_output="@SUM(1+1)*cmd", error="+err")
    lines[1].update(sample_id="-7")
    (root / "records.jsonl").write_text("".join(json.dumps(line) + "\n" for line in lines))
    trace = root / lines[0]["trace"]
    trace.write_text(json.dumps({**json.loads(trace.read_text()), "question": "=1+1 what colour?"}))
    return root


def test_export_csv_defuses_formulas(hostile_run, tmp_path):
    out = tmp_path / "r.csv"
    assert runner.invoke(app, ["export", str(hostile_run), "--format", "csv", "--out", str(out)]).exit_code == 0
    rows = {r["sample_id"]: r for r in csv.DictReader(out.open())}
    assert set(rows) == {"'" + HOSTILE_ID, "-7"}, "a numeric id is left as it is"
    row = rows["'" + HOSTILE_ID]
    assert (row["raw_output"], row["error"], row["question"]) == ("'@SUM(1+1)*cmd", "'+err", "'=1+1 what colour?")
    assert float(row["seconds"]) == 1.0


def test_report_csvs_defuse_formulas(hostile_run, tmp_path):
    out = tmp_path / "report"
    assert runner.invoke(app, ["report", str(hostile_run), "--out", str(out)]).exit_code == 0
    ids = {r["sample_id"] for r in csv.DictReader((out / "trace_index.csv").open())}
    assert ids == {"'" + HOSTILE_ID, "-7"}
    for path in out.glob("*.csv"):
        cells = [c for row in csv.reader(path.open()) for c in row]
        assert not [c for c in cells if c[:1] in ("=", "+", "@") or (c[:1] == "-" and not _number(c))], path.name


def _number(text: str) -> bool:
    try:
        float(text)
        return True
    except ValueError:
        return False
