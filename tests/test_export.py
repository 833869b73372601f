"""`xthink export`: a real run's records as lmms-eval's per-sample logs and as CSV, checked line by line."""

from __future__ import annotations

import csv
import hashlib
import json
import shutil

import pytest
from typer.testing import CliRunner

from evals.run_store import read_records
from evals.synthetic.benchmarks import mmstar_rows, write_parquet
from graphs.cli.app import app

runner = CliRunner()
QUESTION = "What colour is the square?"


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


def export(run, fmt, out):
    result = runner.invoke(app, ["export", str(run), "--format", fmt, "--out", str(out)])
    assert result.exit_code == 0, result.output
    return out


def read_jsonl(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_lmms_eval_log_samples(run, tmp_path):
    out = export(run, "lmms-eval", tmp_path / "lm")
    files = sorted(p.name for p in out.iterdir())
    assert files == ["run_samples_mmstar_caption.jsonl", "run_samples_mmstar_direct.jsonl"]
    records = {(r.regime, r.sample_id): r for r in read_records(run)}
    seen = set()
    for name in files:
        regime = name.removeprefix("run_samples_mmstar_").removesuffix(".jsonl")
        for sample in read_jsonl(out / name):
            assert sample["regime"] == regime
            record = records[(regime, str(sample["doc_id"]))]
            seen.add(record.key)
            assert {"doc_id", "target", "resps", "filtered_resps", "doc_hash", "input", "exact_match"} <= set(sample)
            assert sample["target"] == record.gold and sample["resps"] == [[record.raw_output]]
            assert sample["filtered_resps"] == [record.pred or ""]
            assert sample["exact_match"] == (1.0 if record.correct else 0.0)
            assert (sample["category"], sample["method"], sample["extraction_calls"]) == \
                (record.category, record.method, record.extraction_calls)
            assert sample["doc"]["question"] == QUESTION and len(sample["doc"]["options"]) == 4
            assert sample["input"] == QUESTION + "".join(f"\n{k}. {o}" for k, o in zip("ABCD",
                                                                                       sample["doc"]["options"]))
            assert sample["arguments"] == [sample["input"]]
            doc_json = json.dumps(sample["doc"], indent=2, ensure_ascii=False).encode()
            assert sample["doc_hash"] == hashlib.sha256(doc_json).hexdigest()
    assert seen == {r.key for r in records.values()} and len(seen) == 6, "every record exported exactly once"


def test_a_record_without_its_trace_has_an_empty_input(run, tmp_path):
    copy = shutil.copytree(run, tmp_path / "run")
    shutil.rmtree(copy / "traces")
    samples = read_jsonl(export(copy, "lmms-eval", tmp_path / "lm") / "run_samples_mmstar_direct.jsonl")
    assert len(samples) == 3
    assert all(s["input"] == "" and s["doc"]["question"] == "" and s["doc"]["options"] == [] for s in samples)


def test_records_of_earlier_settings_get_a_task_of_their_own(run, tmp_path):
    """A resumed run keeps its old records; one file must never hold two answers to the same document."""
    copy = shutil.copytree(run, tmp_path / "run")
    (old,) = [r for r in read_records(copy) if r.regime == "direct"][:1]
    earlier = old.model_copy(update={"settings_hash": "abcdef123456", "correct": not old.correct})
    with (copy / "records.jsonl").open("a") as handle:
        handle.write(earlier.model_dump_json() + "\n")
    out = export(copy, "lmms-eval", tmp_path / "lm")
    assert sorted(p.name for p in out.iterdir()) == ["run_samples_mmstar_caption.jsonl",
                                                     "run_samples_mmstar_direct-earlier-abcdef.jsonl",
                                                     "run_samples_mmstar_direct.jsonl"]
    (line,) = read_jsonl(out / "run_samples_mmstar_direct-earlier-abcdef.jsonl")
    assert str(line["doc_id"]) == old.sample_id and line["exact_match"] == (1.0 if earlier.correct else 0.0)
    assert len(read_jsonl(out / "run_samples_mmstar_direct.jsonl")) == 3


def test_csv(run, tmp_path):
    out = export(run, "csv", tmp_path / "r.csv")
    rows = list(csv.DictReader(out.open()))
    records = read_records(run)
    assert len(rows) == len(records) == 6
    assert {(r["regime"], r["sample_id"], r["gold"], r["pred"], r["correct"]) for r in rows} == \
        {(r.regime, r.sample_id, r.gold, r.pred or "", str(r.correct)) for r in records}
    assert all(r["question"] == QUESTION and len(json.loads(r["options"])) == 4 for r in rows)
    assert {"trace", "settings_hash", "extraction_calls", "seconds"} <= set(rows[0])


@pytest.mark.parametrize("args, message", [
    (["--format", "parquet"], "unknown --format 'parquet'"),
    (["--format", "csv", "--out", "{tmp}"], "is a folder"),
    (["--format", "lmms-eval", "--out", "{file}"], "is a file"),
    (["--format", "lmms-eval", "--out", "{file}/sub"], "a file is in the way"),
    (["--format", "csv", "--out", "{file}/sub/r.csv"], "a file is in the way"),
])
def test_errors(run, tmp_path, args, message):
    afile = tmp_path / "a.txt"
    afile.write_text("x")
    args = [a.replace("{tmp}", str(tmp_path)).replace("{file}", str(afile)) for a in args]
    check_error(runner.invoke(app, ["export", str(run), *args]), message)


def test_not_a_run_folder(tmp_path):
    check_error(runner.invoke(app, ["export", str(tmp_path / "nope"), "--format", "csv"]), "not a run folder")
    (tmp_path / "records.jsonl").write_text('{"regime": "direct"}\n')
    check_error(runner.invoke(app, ["export", str(tmp_path), "--format", "lmms-eval"]), "not an eval record")


def check_error(result, message):
    assert result.exit_code == 2, result.output
    assert message in result.output and "Traceback" not in result.output
    assert result.output.strip().startswith("error:") and len(result.output.strip().splitlines()) == 1, result.output
