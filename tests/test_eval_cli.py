"""`xthink eval` and `xthink report` on bad input: a clear message, exit 2, no traceback."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from evals.synthetic.benchmarks import mmstar_rows, write_parquet
from graphs.cli.app import app

runner = CliRunner()


@pytest.fixture(scope="module")
def mmstar(tmp_path_factory):
    return write_parquet(mmstar_rows(), tmp_path_factory.mktemp("d") / "mmstar.parquet")


def evaluate(tiny, out, *bench_args, extra=()):
    args = ["eval", *bench_args, "--mode", "direct", "--out", str(out), "--reasoner", str(tiny.reasoner),
            "--perceiver", str(tiny.perceivers["llava"]), "--greedy", "--perceiver-max-new-tokens", "4",
            "--device", "cpu", *extra]
    return runner.invoke(app, args)


def check_error(result, message):
    assert result.exit_code == 2, result.output
    assert message in result.output and "Traceback" not in result.output


def test_unknown_benchmark(tiny, tmp_path):
    check_error(evaluate(tiny, tmp_path, "--bench", "mmbench=x.parquet"), "valid benchmarks: vmcbench, mmstar")


def test_missing_file(tiny, tmp_path):
    check_error(evaluate(tiny, tmp_path, "--bench", "mmstar=/no/file.parquet"), "does not exist")


def test_wrong_schema(tiny, tmp_path, mmstar):
    check_error(evaluate(tiny, tmp_path, "--bench", f"vmcbench={mmstar}"), "missing column(s) A, B, C, D")


def test_empty_dataset(tiny, tmp_path):
    empty = tmp_path / "e.jsonl"
    empty.write_text("")
    check_error(evaluate(tiny, tmp_path / "o", "--bench", f"mmstar={empty}"), "no rows")


def test_duplicate_ids(tiny, tmp_path):
    rows = mmstar_rows()
    rows[2]["index"] = rows[1]["index"]
    path = write_parquet(rows, tmp_path / "dup.parquet")
    check_error(evaluate(tiny, tmp_path / "o", "--bench", f"mmstar={path}"), "duplicate ids")


def test_unknown_mode(tiny, tmp_path, mmstar):
    result = runner.invoke(app, ["eval", "--bench", f"mmstar={mmstar}", "--mode", "magic", "--out", str(tmp_path)])
    check_error(result, "unknown mode 'magic'")


def test_folder_with_other_settings(tiny, tmp_path, mmstar):
    out = tmp_path / "run"
    first = evaluate(tiny, out, "--bench", f"mmstar={mmstar}", extra=["--limit", "2"])
    assert first.exit_code == 0, first.output
    check_error(evaluate(tiny, out, "--bench", f"mmstar={mmstar}", extra=["--limit", "3"]), "--restart")
    again = evaluate(tiny, out, "--bench", f"mmstar={mmstar}", extra=["--limit", "3", "--restart"])
    assert again.exit_code == 0
    table = json.loads(runner.invoke(app, ["report", str(out), "--json"]).stdout)
    assert table[0]["regime"] == "direct" and table[0]["n"] == 3


def test_report_on_a_folder_without_records(tmp_path):
    check_error(runner.invoke(app, ["report", str(tmp_path)]), "holds no eval records")


def test_report_errors_are_one_line(tmp_path, tiny, mmstar):
    check_error(runner.invoke(app, ["report", str(tmp_path / "nope")]), "is not a folder")
    out = tmp_path / "run"
    assert evaluate(tiny, out, "--bench", f"mmstar={mmstar}", extra=["--limit", "1"]).exit_code == 0
    afile = tmp_path / "a.txt"
    afile.write_text("x")
    check_error(runner.invoke(app, ["report", str(out), "--out", str(afile)]), "is a file")


def test_eval_out_is_a_file_and_bad_first_look(tiny, tmp_path, mmstar):
    afile = tmp_path / "a.txt"
    afile.write_text("x")
    check_error(evaluate(tiny, afile, "--bench", f"mmstar={mmstar}"), "is a file")
    check_error(evaluate(tiny, tmp_path / "o", "--bench", f"mmstar={mmstar}", extra=["--first-look", "peek"]),
                "--first-look must be one of none, caption, not 'peek'")


def test_convert_errors_are_one_line(tmp_path):
    check_error(runner.invoke(app, ["convert", str(tmp_path / "missing"), str(tmp_path / "out")]), "is not a folder")
    afile = tmp_path / "a.txt"
    afile.write_text("x")
    check_error(runner.invoke(app, ["convert", str(tmp_path), str(afile)]), "is a file")
    check_error(runner.invoke(app, ["convert", str(tmp_path), str(tmp_path / "out")]), "config.json")
