"""Output folders a user names: a command writes into a new, empty or own folder, never over anything else."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from evals.run_store import RunStore
from tools.files.folders import RunFolderError
from graphs.cli.app import app

runner = CliRunner()


def someone_elses(folder):
    """A folder with the names a run writes, but not a run: a user's own images, traces and report."""
    for name in ("images", "traces", "report"):
        (folder / name).mkdir(parents=True)
        (folder / name / "mine.txt").write_text("keep me")
    (folder / "notes.md").write_text("keep me")
    return folder


def untouched(folder) -> bool:
    return all((folder / n / "mine.txt").read_text() == "keep me" for n in ("images", "traces", "report")) and (
        folder / "notes.md").read_text() == "keep me"


def check_refused(result, folder):
    assert result.exit_code == 2, result.output
    assert "is not a run folder" in result.output and "Traceback" not in result.output
    assert len(result.output.strip().splitlines()) == 1
    assert untouched(folder)


@pytest.mark.parametrize("restart", [False, True])
def test_eval_refuses_a_folder_that_is_not_a_run(tmp_path, restart):
    folder = someone_elses(tmp_path / "mine")
    args = ["eval", "--bench", "mmstar=/no/such.parquet", "--mode", "direct", "--out", str(folder),
            "--reasoner", str(tmp_path / "r"), "--perceiver", str(tmp_path / "p")]
    check_refused(runner.invoke(app, args + (["--restart"] if restart else [])), folder)


def test_store_restart_removes_only_what_a_run_wrote(tmp_path):
    store = RunStore(tmp_path / "run")
    store.open({"identity": {"a": 1}})
    store.write_trace("traces/t.json", "{}")
    (store.root / "images").mkdir()
    (store.root / "notes.md").write_text("keep me")
    RunStore(store.root).open({"identity": {"a": 2}}, restart=True)
    assert (store.root / "notes.md").read_text() == "keep me"
    assert not (store.root / "traces").exists() and not (store.root / "images").exists()
    assert json.loads((store.root / "run.json").read_text())["identity"] == {"a": 2}


def test_store_refuses_a_folder_that_is_not_a_run(tmp_path):
    folder = someone_elses(tmp_path / "mine")
    with pytest.raises(RunFolderError, match="nothing in it was touched"):
        RunStore(folder).open({"identity": {}}, restart=True)
    assert untouched(folder)
    only_our_names = tmp_path / "names"
    (only_our_names / "images").mkdir(parents=True)
    (only_our_names / "images" / "mine.png").write_text("keep me")
    with pytest.raises(RunFolderError, match="no run.json"):
        RunStore(only_our_names).open({"identity": {}}, restart=True)
    assert (only_our_names / "images" / "mine.png").exists(), "names a run writes are not enough: run.json is"
    RunStore(tmp_path / "new").open({"identity": {}})  # a new folder is fine
    (tmp_path / "empty").mkdir()
    RunStore(tmp_path / "empty").open({"identity": {}})  # and so is an empty one


@pytest.mark.parametrize("restart", [False, True])
def test_vet_data_refuses_a_folder_that_is_not_its_own(tmp_path, restart):
    folder = someone_elses(tmp_path / "mine")
    (folder / "records.jsonl").write_text("{}\n")  # a name vet-data writes, among names it does not
    args = ["vet-data", "--source", str(tmp_path / "s.json"), "--teacher", str(tmp_path / "t"), "--out", str(folder)]
    result = runner.invoke(app, args + (["--restart"] if restart else []))
    assert result.exit_code == 2 and "is not a VET data folder" in result.output, result.output
    assert untouched(folder) and (folder / "records.jsonl").read_text() == "{}\n"


@pytest.mark.parametrize("restart", [False, True])
def test_vet_train_refuses_a_folder_that_is_not_its_own(tmp_path, restart):
    folder = someone_elses(tmp_path / "mine")
    (folder / "checkpoints").mkdir()
    (folder / "checkpoints" / "mine.txt").write_text("keep me")
    args = ["vet-train", "--data", str(tmp_path), "--base", str(tmp_path / "b"), "--out", str(folder)]
    result = runner.invoke(app, args + (["--restart"] if restart else []))
    assert result.exit_code == 2 and "is not a vet-train output folder" in result.output, result.output
    assert untouched(folder) and (folder / "checkpoints" / "mine.txt").exists()
    assert not (folder / "vet_train.json").exists()


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    from evals.synthetic.run_folder import write_run

    return write_run(tmp_path_factory.mktemp("runs") / "run", items=4, regimes=("direct", "iterative"))


def test_report_out_refuses_a_folder_that_is_not_a_report(run, tmp_path):
    folder = someone_elses(tmp_path / "mine")
    (folder / "report.md").write_text("keep me")
    result = runner.invoke(app, ["report", str(run), "--out", str(folder)])
    assert result.exit_code == 2 and "is not a report folder" in result.output, result.output
    assert untouched(folder) and (folder / "report.md").read_text() == "keep me"
    again = tmp_path / "again"
    assert runner.invoke(app, ["report", str(run), "--out", str(again)]).exit_code == 0
    assert runner.invoke(app, ["report", str(run), "--out", str(again)]).exit_code == 0, "its own files: rewritten"


def test_export_never_overwrites_a_file_or_folder_it_did_not_write(run, tmp_path):
    mine = tmp_path / "budget.csv"
    mine.write_text("=SUM(A1:A9)\n")
    result = runner.invoke(app, ["export", str(run), "--format", "csv", "--out", str(mine)])
    assert result.exit_code == 2 and "not a records CSV written by xthink" in result.output, result.output
    assert mine.read_text() == "=SUM(A1:A9)\n"
    ours = tmp_path / "records.csv"
    for _ in range(2):  # a CSV it wrote before is rewritten
        assert runner.invoke(app, ["export", str(run), "--format", "csv", "--out", str(ours)]).exit_code == 0
    folder = someone_elses(tmp_path / "mine")
    result = runner.invoke(app, ["export", str(run), "--format", "lmms-eval", "--out", str(folder)])
    assert result.exit_code == 2 and "is not an lmms-eval export folder" in result.output, result.output
    assert untouched(folder) and sorted(p.name for p in folder.iterdir()) == ["images", "notes.md", "report", "traces"]


def test_view_never_overwrites_a_file_it_did_not_write(run, tmp_path):
    mine = tmp_path / "index.html"
    mine.write_text("<html>my home page</html>")
    result = runner.invoke(app, ["view", str(run), "-o", str(mine)])
    assert result.exit_code == 2 and "not a page written by xthink" in result.output, result.output
    assert mine.read_text() == "<html>my home page</html>"
    ours = tmp_path / "view.html"
    for _ in range(2):  # a page it wrote before is rewritten
        assert runner.invoke(app, ["view", str(run), "-o", str(ours)]).exit_code == 0


def test_selftest_keep_refuses_a_folder_that_is_not_a_selftest(tmp_path):
    folder = someone_elses(tmp_path / "mine")
    (folder / "models").mkdir()
    result = runner.invoke(app, ["selftest", "--keep", str(folder)])
    assert result.exit_code == 2 and "is not a selftest folder" in result.output, result.output
    assert untouched(folder) and list((folder / "models").iterdir()) == []


def test_ask_trace_out_never_overwrites_a_file_it_did_not_write(tiny, image_path, tmp_path):
    mine = tmp_path / "notes.json"
    mine.write_text('{"my": "data"}')
    models = ["--reasoner", str(tiny.reasoner), "--perceiver", str(tiny.perceivers["llava"])]
    base = ["ask", str(image_path), "What colour?", "--mode", "caption", *models, "--greedy",
            "--max-new-tokens", "4", "--perceiver-max-new-tokens", "4"]  # fmt: skip
    result = runner.invoke(app, [*base, "--trace-out", str(mine)])
    assert result.exit_code == 2 and "not a trace written by xthink" in result.output, result.output
    assert mine.read_text() == '{"my": "data"}'
    ours = tmp_path / "trace.json"
    for _ in range(2):  # a trace it wrote before is rewritten
        result = runner.invoke(app, [*base, "--trace-out", str(ours)])
        assert result.exit_code == 0, result.output
    assert json.loads(ours.read_text())["mode"] == "caption"


@pytest.mark.parametrize("relative", ["../escaped.json", "traces/../../escaped.json", "traces/..", "/tmp/abs.json"])
def test_store_refuses_a_trace_outside_its_folder(tmp_path, relative):
    store = RunStore(tmp_path / "run")
    store.open({"identity": {"a": 1}})
    store.write_trace("traces/caption/ok.json", "{}")  # a checked folder does not vouch for other paths
    with pytest.raises(RunFolderError, match="outside the run folder"):
        store.write_trace(relative, "{}")
    assert (store.root / "traces/caption/ok.json").read_text() == "{}"
    assert not (tmp_path / "escaped.json").exists()
