"""V*Bench and HR-Bench: every layout loads to the same items, scoring follows the official protocols, and a
tiny-model eval over 8K images reports the high-resolution table."""

from __future__ import annotations

import csv
import json

import pytest
from typer.testing import CliRunner

from evals.aggregate import HR_COLUMNS, cycle_accuracy, high_res_row
from evals.benchmarks import get_benchmark, to_sample
from evals.records import SampleRecord
from evals.sampling import subsample
from evals.sources import load_rows
from evals.synthetic.benchmarks import write_high_res
from graphs.cli.app import app


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    return write_high_res(tmp_path_factory.mktemp("hr"))


def samples(name, path, seed=0):
    bench = get_benchmark(name)
    return [to_sample(bench, row, seed) for row in load_rows(bench, str(path), None).rows]


def test_vstar_layouts_hold_the_same_questions(files):
    release, hub, tsv = (samples("vstar", files[k]) for k in ("vstar", "vstar_hub", "vstar_tsv"))
    for layout in (release, hub, tsv):
        assert [s.category for s in layout] == ["direct_attributes"] * 2 + ["relative_position"] * 2
        assert sorted(s.question for s in layout) == sorted(s.question for s in release)
    assert all(not s.options[-1].startswith("Answer with") and "Answer with" not in s.options[-1] for s in hub)
    gold = {s.question: s.options["ABCD".index(s.answer)] for s in release}
    for layout in (hub, tsv):
        assert {s.question: s.options["ABCD".index(s.answer)] for s in layout} == gold


def test_vstar_release_options_are_shuffled_reproducibly_and_recorded(files):
    first, again, other = samples("vstar", files["vstar"], 0), samples("vstar", files["vstar"], 0), \
        samples("vstar", files["vstar"], 7)
    assert [s.options for s in first] == [s.options for s in again]
    assert [s.option_order for s in first] != [s.option_order for s in other]
    annotation = json.loads((files["vstar"] / "direct_attributes" / "sa_1000.json").read_text())
    sample = first[0]
    assert sample.options == [annotation["options"][i] for i in sample.option_order]
    assert sample.options["ABCD".index(sample.answer)] == annotation["options"][0], "gold = the release's first"
    letters = {s.answer for seed in range(6) for s in samples("vstar", files["vstar"], seed)}
    assert len(letters) > 1, "the correct option is not always A"


@pytest.mark.parametrize("key", ["hrbench4k", "hrbench4k_tsv", "hrbench8k", "hrbench8k_tsv"])
def test_hrbench_cycles(files, key):
    rows = samples(key.split("_")[0], files[key])
    assert len(rows) == 16 and {s.category for s in rows} == {"single", "cross"}
    for start in range(0, 16, 4):
        group = rows[start : start + 4]
        assert [s.cycle for s in group] == [0, 1, 2, 3] and [s.answer for s in group] == list("ABCD")
        assert len({s.group for s in group}) == 1
        assert len({s.options["ABCD".index(s.answer)] for s in group}) == 1
    chosen = subsample(rows, 2, seed=0)
    assert len(chosen) == 8 and {s.category for s in chosen} == {"single", "cross"}, "cycles stay together"


def _record(bench, category, cycle, correct, regime="iterative"):
    return SampleRecord(regime=regime, benchmark=bench, sample_id=f"{category}{cycle}{correct}", category=category,
                        gold="A", correct=correct, cycle=cycle)


def test_hrbench_score_is_the_mean_over_cycles():
    records = [_record("hrbench4k", "single", 0, True), _record("hrbench4k", "single", 0, True),
               _record("hrbench4k", "single", 1, False), _record("hrbench4k", "cross", 1, True)]
    assert cycle_accuracy(records) == pytest.approx((100.0 + 100.0 / 2) / 2), "not the plain mean (75%)"
    row = high_res_row("iterative", records + [_record("vstar", "direct_attributes", None, True),
                                               _record("vstar", "relative_position", None, False)])
    assert list(row) == ["regime", "n", *HR_COLUMNS]
    assert row["HR4K FSP"] == pytest.approx((100 + 0) / 2) and row["HR4K FCP"] == 100.0
    assert (row["V* Attr"], row["V* Spatial"], row["V* avg"]) == (100.0, 0.0, 50.0)
    assert row["HR8K avg"] is None and row["n"] == 6


def test_tiny_eval_on_8k_images_reports_the_high_res_table(tiny, files, tmp_path):
    out = tmp_path / "run"
    args = ["eval", "--bench", f"vstar={files['vstar']}", "--bench", f"hrbench8k={files['hrbench8k']}",
            "--mode", "iterative", "--mode", "direct", "--first-look", "caption", "--limit", "1",
            "--out", str(out), "--reasoner", str(tiny.reasoner), "--perceiver", str(tiny.perceivers["qwen2_5_vl"]),
            "--greedy", "--max-new-tokens", "16", "--perceiver-max-new-tokens", "4", "--device", "cpu"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    records = [json.loads(line) for line in (out / "records.jsonl").read_text().splitlines()]
    assert {r["regime"] for r in records} == {"iterative+look", "direct"} and all(r["status"] == "ok" for r in records)
    hr = [r for r in records if r["benchmark"] == "hrbench8k"]
    assert sorted(r["cycle"] for r in hr) == [0, 0, 1, 1, 2, 2, 3, 3]
    assert all(r["option_order"] for r in records if r["benchmark"] == "vstar")
    look = json.loads((out / next(r["trace"] for r in hr if r["regime"] == "iterative+look")).read_text())
    assert look["steps"][0]["purpose"] == "look" and look["images"][0]["width"] == 7680
    with (out / "report" / "high_res.csv").open() as handle:
        table = list(csv.DictReader(handle))
    assert list(table[0]) == ["regime", "n", *HR_COLUMNS]
    assert [(row["regime"], row["n"]) for row in table] == [("iterative+look", "5"), ("direct", "5")]
    assert table[0]["HR8K avg"] != "" and table[0]["HR4K avg"] == ""
    report = CliRunner().invoke(app, ["report", str(out), "--json"])
    rows = json.loads(report.stdout)
    assert [r["table"] for r in rows] == ["high-res", "high-res"]
    cost = list(csv.DictReader((out / "report" / "cost.csv").open()))
    assert {"extraction_calls_median", "region_share", "invalid_call_rate", "budget_spent_rate",
            "repaired_boxes"} <= set(cost[0])
