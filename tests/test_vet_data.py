"""`xthink vet-data`: both teacher steps run through real models, pairs are written, broken items are recorded,
a killed run resumes with every item once, the iterative style goes through the extract tool's path."""

from __future__ import annotations

import json
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
from typer.testing import CliRunner

from evals.synthetic.vet_source import write_source
from tools.vet.teacher import DESCRIBE_PROMPT, REGIONS, TEACHER_SIDE, focus, statements_prompt
from tools.vet.sources import load_source
from graphs.cli.app import app
from tests.kill import ENV, kill_when, line_count

runner = CliRunner()


@pytest.fixture(scope="module")
def source(tmp_path_factory) -> Path:
    return write_source(tmp_path_factory.mktemp("vetsrc"), n=4, broken=True)


def vet_data(tiny, source, out, *extra, teacher="llava_onevision"):
    args = ["vet-data", "--source", str(source), "--teacher", str(tiny.perceivers[teacher]), "--out", str(out),
            "--statement-tokens", "12", "--description-tokens", "16", "--device", "cpu", *extra]
    return runner.invoke(app, args)


def records(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "records.jsonl").read_text().splitlines()]


@pytest.fixture(scope="module")
def paper_run(tiny, source, tmp_path_factory):
    out = tmp_path_factory.mktemp("vetout") / "pairs"
    result = vet_data(tiny, source, out, "--text-teacher", str(tiny.reasoner), "--concurrency", "3")
    assert result.exit_code == 0, result.output
    return out


def test_both_steps_come_from_the_teachers(paper_run, tiny, source):
    """Each record's statements are the text teacher's greedy output for the step-1 prompt, and its target the
    VLM teacher's greedy output for the step-2 prompt on the 512x512 image: rerunning those calls directly
    reproduces them exactly, so both steps really ran, with these prompts."""
    from tools.backends.base import Message, PerceiveRequest, ReasonRequest, SamplingSettings
    from tools.backends.registry import make_perceiver, make_reasoner
    from tools.images.pixels import load_image

    items = {item.id: item for item in load_source(str(source)).items}
    good = [r for r in records(paper_run) if r["ok"]]
    assert sorted(r["id"] for r in good) == [f"item-{i}" for i in range(4)]
    reasoner, perceiver = make_reasoner(str(tiny.reasoner)), make_perceiver(str(tiny.perceivers["llava_onevision"]))
    for record in good[:2]:
        item = items[record["id"]]
        settings = SamplingSettings(thinking=False, greedy=True, max_new_tokens=12, thinking_budget=None)
        step1 = reasoner.reason([ReasonRequest((Message("user", statements_prompt(item)),), settings)])[0]
        assert record["statements"] and record["statements"] == step1.text.strip()
        image = load_image(source.parent / item.image).resize((TEACHER_SIDE, TEACHER_SIDE))
        prompt = DESCRIBE_PROMPT.format(statements=record["statements"])
        step2 = perceiver.perceive([PerceiveRequest((image,), prompt, max_new_tokens=16)])[0]
        assert record["target"] and record["target"] == step2.text.strip()
        assert record["instruction"].endswith(f"Especially, pay attention to {focus(record['questions'])}.")
        assert "What colour is the square?" in record["instruction"]


def test_pairs_are_written_as_parquet_llava_json_and_images(paper_run):
    import datasets

    ds = datasets.load_dataset(str(paper_run), split="train")
    assert sorted(ds["id"]) == [f"item-{i}" for i in range(4)]
    assert ds[0]["image"].size == (96, 64) and ds[0]["target"]
    same = datasets.load_dataset("parquet", data_dir=str(paper_run / "data"), split="train")
    assert len(same) == 4
    llava = json.loads((paper_run / "llava.json").read_text())
    assert [c["from"] for c in llava[0]["conversations"]] == ["human", "gpt"]
    assert llava[0]["conversations"][0]["value"].startswith("<image>\nDescribe the fine-grained content")
    assert all((paper_run / row["image"]).is_file() for row in llava)
    manifest = json.loads((paper_run / "manifest.json").read_text())
    assert manifest["identity"]["source_hash"].startswith("sha256:") and "statements" in manifest["prompts"]


def test_broken_items_are_recorded_and_the_run_goes_on(paper_run):
    errors = {r["id"]: r["error"] for r in records(paper_run) if not r["ok"]}
    assert set(errors) == {"broken-missing", "broken-corrupt", "broken-no-human"}
    assert "does not exist" in errors["broken-missing"]
    assert "corrupt" in errors["broken-corrupt"]
    assert "no human turn" in errors["broken-no-human"]


def test_rerun_retries_failures_only(paper_run, tiny, source):
    before = records(paper_run)
    result = vet_data(tiny, source, paper_run, "--text-teacher", str(tiny.reasoner))
    assert result.exit_code == 0, result.output
    new = records(paper_run)[len(before):]
    assert sorted(r["id"] for r in new) == ["broken-corrupt", "broken-missing", "broken-no-human"]
    assert "4 pairs" in result.output and "(0 new)" in result.output


def test_vlm_teacher_serves_step_one_text_only(tiny, source, tmp_path):
    result = vet_data(tiny, source, tmp_path / "one", "--limit", "2", teacher="qwen2_5_vl")
    assert result.exit_code == 0, result.output
    good = [r for r in records(tmp_path / "one") if r["ok"]]
    assert len(good) == 2 and all(r["statements"] and r["target"] for r in good)


def test_iterative_style_pairs_are_what_the_extract_tool_sends(tiny, source, tmp_path):
    from tools.perception import extraction_instruction
    from tools.backends.base import PerceiveRequest
    from tools.backends.registry import make_perceiver
    from tools.images.pixels import crop_region, fit_aspect, load_image

    out = tmp_path / "iter"
    result = vet_data(tiny, source, out, "--style", "iterative", "--limit", "3")
    assert result.exit_code == 0, result.output
    perceiver = make_perceiver(str(tiny.perceivers["llava_onevision"]))
    items = {item.id: item for item in load_source(str(source)).items}
    for record in (r for r in records(out) if r["ok"]):
        assert tuple(record["region"]) in REGIONS
        assert record["instruction"] == extraction_instruction(focus(record["questions"]))
        view = fit_aspect(crop_region(load_image(source.parent / items[record["id"]].image), tuple(record["region"])))
        assert load_image(out / record["image"]).tobytes() == view.tobytes()
        again = perceiver.perceive([PerceiveRequest((view,), record["instruction"], max_new_tokens=16)])[0]
        assert record["target"] == again.text.strip()


def test_killed_run_resumes_with_every_item_once(tiny, tmp_path):
    source = write_source(tmp_path / "src", n=16)
    out = tmp_path / "killed"
    cmd = [sys.executable, "-m", "graphs.cli.app", "vet-data", "--source", str(source), "--teacher",
           str(tiny.perceivers["llava"]), "--text-teacher", str(tiny.reasoner), "--out", str(out),
           "--statement-tokens", "48", "--description-tokens", "96", "--concurrency", "1", "--device", "cpu"]
    path = out / "records.jsonl"
    kill_when(cmd, lambda: line_count(path) >= 3)
    partial = line_count(path)
    assert 3 <= partial < 16, "the kill must land part way through the run"
    done = subprocess.run(cmd, env=ENV, capture_output=True, text=True, timeout=600, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    written = records(out)
    assert Counter(r["id"] for r in written) == Counter({f"item-{i}": 1 for i in range(16)})
    assert all(r["ok"] for r in written)


def test_bad_input_is_one_line(tiny, tmp_path, source):
    for args, code, message in [
        (["--source", str(tmp_path / "nope.json")], 2, "does not exist"),
        (["--source", str(source), "--style", "zigzag"], 2, "unknown --style"),
    ]:
        result = runner.invoke(app, ["vet-data", *args, "--teacher", str(tiny.perceivers["llava"]),
                                     "--out", str(tmp_path / "o")])  # fmt: skip
        assert result.exit_code == code, result.output
        assert message in result.output and "Traceback" not in result.output
    result = runner.invoke(app, ["vet-data", "--source", str(source), "--teacher", str(tiny.reasoner),
                                 "--out", str(tmp_path / "o2")])  # fmt: skip
    assert result.exit_code == 3 and "not a vision-language model" in result.output
    not_llava = tmp_path / "plain.json"
    not_llava.write_text(json.dumps([{"id": 1, "question": "q"}]))
    result = runner.invoke(app, ["vet-data", "--source", str(not_llava), "--teacher", str(tiny.perceivers["llava"]),
                                 "--out", str(tmp_path / "o3")])  # fmt: skip
    assert result.exit_code == 2 and "LLaVA conversation format" in result.output


def test_parquet_source_with_embedded_images(tiny, source, tmp_path):
    """The hub layout: conversations and an image struct {bytes, path} in parquet, no image files beside it."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    rows = json.loads(source.read_text())[:2]
    table = [{"id": r["id"], "conversations": r["conversations"],
              "image": {"bytes": (source.parent / r["image"]).read_bytes(), "path": r["image"]}} for r in rows]
    folder = tmp_path / "hub-layout" / "data"
    folder.mkdir(parents=True)
    pq.write_table(pa.Table.from_pylist(table), folder / "train-00000-of-00001.parquet")
    out = tmp_path / "from-parquet"
    result = vet_data(tiny, folder.parent, out, "--text-teacher", str(tiny.reasoner))
    assert result.exit_code == 0, result.output
    assert sorted(r["id"] for r in records(out) if r["ok"]) == ["item-0", "item-1"]
