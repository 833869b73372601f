"""HR-Bench's cycle_category is an opaque label, as VLMEvalKit and lmms-eval group by it: text labels load."""

from __future__ import annotations

import pytest

from evals.aggregate import cycle_accuracy
from evals.benchmarks import cycle_label, get_benchmark, to_sample
from evals.records import SampleRecord
from evals.sampling import subsample
from evals.sources import load_rows
from evals.synthetic.benchmarks import hrbench_rows, write_hrbench_tsv, write_parquet

LABELS = ("cycle_a", "cycle_b", "cycle_c", "cycle_d")


def labelled_rows() -> list[dict]:
    rows = hrbench_rows((64, 36))
    for row in rows:
        row["cycle_category"] = LABELS[int(row["cycle_category"])]
    return rows


@pytest.mark.parametrize("write,suffix", [(write_parquet, ".parquet"), (write_hrbench_tsv, ".tsv")])
def test_text_cycle_labels_load_and_group(tmp_path, write, suffix):
    path = write(labelled_rows(), tmp_path / f"hr_bench_4k{suffix}")
    bench = get_benchmark("hrbench4k")
    samples = [to_sample(bench, row, 0) for row in load_rows(bench, str(path), None).rows]
    assert len(samples) == 16 and [s.cycle for s in samples[:4]] == list(LABELS)
    assert len(subsample(samples, 2, seed=0)) == 8, "a question's four cycles stay together"


def test_score_groups_by_the_label():
    records = [SampleRecord(regime="iterative", benchmark="hrbench4k", sample_id=str(i), category="single",
                            gold="A", correct=ok, cycle=label)
               for i, (label, ok) in enumerate([("cycle_a", True), ("cycle_a", True), ("cycle_b", False),
                                                ("cycle_b", True)])]  # fmt: skip
    assert cycle_accuracy(records) == pytest.approx((100.0 + 50.0) / 2)
    assert SampleRecord.model_validate_json(records[0].model_dump_json()).cycle == "cycle_a"


@pytest.mark.parametrize("value", [0, "0", 0.0, "0.0", " 0 "])
def test_a_whole_number_is_one_label_whatever_the_file_type(value):
    assert cycle_label(value) == 0
