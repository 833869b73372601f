"""The conversion cache: keyed by the checkpoint's files, written atomically, converted once across processes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file
from typer.testing import CliRunner

from graphs.cli.app import app
from tests.llava_next import write_checkpoint
from tools.backends.conversion_cache import ensure_converted

PROJECTOR = "model.mm_projector.2.bias"


@pytest.fixture()
def checkpoint(tmp_path):
    return write_checkpoint(tmp_path / "src")


def converted_bias(folder: str) -> torch.Tensor:
    weights = {}
    for file in Path(folder).glob("*.safetensors"):
        weights.update(load_file(str(file)))
    return weights["multi_modal_projector.linear_2.bias"]  # the on-disk name


def test_a_checkpoint_retrained_in_place_is_converted_again(checkpoint, tmp_path, monkeypatch):
    monkeypatch.setenv("XTHINK_CACHE", str(tmp_path / "cache"))
    first = ensure_converted(str(checkpoint))
    assert torch.equal(converted_bias(first), torch.zeros(64))
    assert ensure_converted(str(checkpoint)) == first, "an unchanged checkpoint reuses its conversion"
    weights = load_file(str(checkpoint / "model.safetensors"))
    weights[PROJECTOR] = torch.full((64,), 0.5)
    save_file(weights, str(checkpoint / "model.safetensors"))  # the same size: only the time tells
    stat = (checkpoint / "model.safetensors").stat()
    os.utime(checkpoint / "model.safetensors", ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
    second = ensure_converted(str(checkpoint))
    assert second != first
    assert torch.equal(converted_bias(second), torch.full((64,), 0.5)), "the retrained weights must be used"
    assert not Path(first).exists(), "the earlier version's conversion is removed: one per source in the cache"


CONVERT_SLOWLY = """
import logging, sys, time
import tools.backends.checkpoint_convert as c
from tools.backends.conversion_cache import ensure_converted
logging.basicConfig(level=logging.INFO, format="%(message)s")
build = c.build_target
c.build_target = lambda *a: (time.sleep(2), build(*a))[1]  # widen the race: both start before one ends
print(ensure_converted(sys.argv[1]))
"""


def test_concurrent_processes_convert_once_and_both_get_a_complete_folder(checkpoint, tmp_path):
    env = {**os.environ, "XTHINK_CACHE": str(tmp_path / "cache"), "PYTHONPATH": str(Path(__file__).parents[1])}
    procs = [subprocess.Popen([sys.executable, "-c", CONVERT_SLOWLY, str(checkpoint)], env=env, text=True,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE) for _ in range(2)]
    outputs = [p.communicate(timeout=600) for p in procs]
    assert all(p.returncode == 0 for p in procs), [err[-2000:] for _, err in outputs]
    folders = {out.strip() for out, _ in outputs}
    assert len(folders) == 1
    assert sum("converting" in err for _, err in outputs) == 1, "the second process must wait and reuse"
    folder = Path(folders.pop())
    assert json.loads((folder / "conversion.json").read_text())["mapped"] > 0
    assert torch.equal(converted_bias(str(folder)), torch.zeros(64))
    assert [p.name for p in folder.parent.iterdir() if p.name.endswith(".tmp")] == [], "no staging left behind"


def test_convert_refuses_a_folder_that_is_not_a_conversion(checkpoint, tmp_path):
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "config.json").write_text("{\"mine\": true}")
    result = CliRunner().invoke(app, ["convert", str(checkpoint), str(mine)])
    assert result.exit_code == 2 and "not a converted model" in result.output, result.output
    assert (mine / "config.json").read_text() == "{\"mine\": true}" and len(list(mine.iterdir())) == 1


def test_convert_replaces_an_earlier_conversion_whole(checkpoint, tmp_path):
    out = tmp_path / "out"
    assert CliRunner().invoke(app, ["convert", str(checkpoint), str(out)]).exit_code == 0
    (out / "spiece.model").write_text("an earlier conversion's tokenizer file")
    result = CliRunner().invoke(app, ["convert", str(checkpoint), str(out)])
    assert result.exit_code == 0, result.output
    assert not (out / "spiece.model").exists() and (out / "conversion.json").is_file()
