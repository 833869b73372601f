"""Output folders a user names: a command writes into a new, empty or own folder, never over anything else."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from evals.store import RunFolderError, RunStore
from graphs.cli import app

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
