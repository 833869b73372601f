"""`xthink export`: a real run's records as lmms-eval's per-sample logs and as CSV, checked line by line."""

from __future__ import annotations

import csv
import json

import pytest
from typer.testing import CliRunner

from evals.store import read_records
from evals.synthetic import mmstar_rows, write_parquet
from graphs.cli import app

runner = CliRunner()


@pytest.fixture(scope="module")
def run(tiny, tmp_path_factory):
    root = tmp_path_factory.mktemp("export")
    data = write_parquet(mmstar_rows(), root / "mmstar.parquet")
    out = root / "run"
    result = runner.invoke(app, ["eval", "--bench", f"mmstar={data}", "--mode", "direct", "--mode", "caption",
                                 "--limit", "3", "--out", str(out), "--reasoner", str(tiny.reasoner),
                                 "--perceiver", str(tiny.perceivers["llava"]), "--greedy", "--max-new-tokens", "8",
                                 "--perceiver-max-new-tokens", "4", "--device", "cpu"])
    assert result.exit_code == 0, result.output
    return out


def test_lmms_eval_log_samples(run, tmp_path):
    result = runner.invoke(app, ["export", str(run), "--format", "lmms-eval", "--out", str(tmp_path / "lm")])
    assert result.exit_code == 0, result.output
    files = sorted(p.name for p in (tmp_path / "lm").iterdir())
    assert files == ["samples_mmstar_caption.jsonl", "samples_mmstar_direct.jsonl"]
    records = {(r.regime, r.sample_id): r for r in read_records(run)}
    for name in files:
        for line in (tmp_path / "lm" / name).read_text().splitlines():
            sample = json.loads(line)
            record = records[(sample["regime"], str(sample["doc_id"]))]
            assert {"doc_id", "doc", "target", "arguments", "resps", "filtered_resps", "doc_hash"} <= set(sample)
            assert sample["target"] == record.gold and sample["resps"] == [[record.raw_output]]
            assert sample["filtered_resps"] == [record.pred or ""]
            assert sample["exact_match"] == (1.0 if record.correct else 0.0)
            assert sample["doc"]["question"] == "What colour is the square?" and len(sample["doc"]["options"]) == 4
            assert sample["input"].startswith("What colour is the square?\nA. ")


def test_csv(run, tmp_path):
    result = runner.invoke(app, ["export", str(run), "--format", "csv", "--out", str(tmp_path / "r.csv")])
    assert result.exit_code == 0, result.output
    rows = list(csv.DictReader((tmp_path / "r.csv").open()))
    records = read_records(run)
    assert len(rows) == len(records) == 6
    assert {(r["regime"], r["sample_id"], r["gold"], r["correct"]) for r in rows} == \
        {(r.regime, r.sample_id, r.gold, str(r.correct)) for r in records}
    assert all(json.loads(r["options"]) for r in rows)


@pytest.mark.parametrize("args, message", [
    (["--format", "parquet"], "unknown --format 'parquet'"),
    (["--format", "csv", "--out", "{tmp}"], "is a folder"),
    (["--format", "lmms-eval", "--out", "{file}"], "is a file"),
])
def test_errors(run, tmp_path, args, message):
    afile = tmp_path / "a.txt"
    afile.write_text("x")
    args = [a.replace("{tmp}", str(tmp_path)).replace("{file}", str(afile)) for a in args]
    result = runner.invoke(app, ["export", str(run), *args])
    assert result.exit_code == 2 and message in result.output and "Traceback" not in result.output
    missing = runner.invoke(app, ["export", str(tmp_path / "nope"), "--format", "csv"])
    assert missing.exit_code == 2 and "not a run folder" in missing.output
