"""Benchmark sources: every format in the real schemas, option parsing, subsampling, and bad data."""

from __future__ import annotations

import json

import pytest

from evals.benchmarks import SchemaError, get_benchmark, split_inline_options, to_sample
from evals.sampling import stratum, subsample
from evals.sources import load_rows
from tools.files.data_files import SourceError, image_bytes
from evals.synthetic.benchmarks import mmstar_rows, vmcbench_rows, write_all, write_parquet


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return write_all(tmp_path_factory.mktemp("data"))


def samples(name, path):
    bench = get_benchmark(name)
    return [to_sample(bench, row) for row in load_rows(bench, str(path), None).rows]


def test_vmcbench_parquet(data):
    items = samples("vmcbench", data["vmcbench"])
    assert len(items) == 14 and len(items[0].options) == 4 and items[0].answer in "ABCD"
    assert {s.category for s in items} >= {"OCRVQA", "TextVQA", "ScienceQA", "VQAv2", "GQA", "VizWiz"}


def test_mmstar_parquet_and_tsv_agree(data):
    parquet, tsv = samples("mmstar", data["mmstar"]), samples("mmstar", data["mmstar_tsv"])
    assert len(parquet) == 18 and [s.model_dump() for s in parquet] == [s.model_dump() for s in tsv]
    assert len({s.l2_category for s in parquet}) == 18


def test_jsonl_with_base64_images(tmp_path):
    import base64

    rows = vmcbench_rows(per_source=1)
    path = tmp_path / "v.jsonl"
    path.write_text("\n".join(json.dumps({**r, "image": base64.b64encode(r["image"]["bytes"]).decode()})
                              for r in rows))
    loaded = load_rows(get_benchmark("vmcbench"), str(path), None)
    assert image_bytes(loaded.rows[0]["image"], loaded.base_dir) == rows[0]["image"]["bytes"]
    assert loaded.kind == "jsonl" and loaded.content_hash.startswith("sha256:")


def test_folder_source_picks_the_split(tmp_path):
    write_parquet(vmcbench_rows(per_source=1), tmp_path / "data" / "test-00000.parquet")
    write_parquet(vmcbench_rows(per_source=2), tmp_path / "data" / "dev-00000.parquet")
    assert len(load_rows(get_benchmark("vmcbench"), str(tmp_path), "dev").rows) == 14


def test_inline_options_with_commas():
    q, opts = split_inline_options("Which is right?\nOptions: A: red, green, B: blue, C: 3, 4, D: none")
    assert q == "Which is right?" and opts == ["red, green", "blue", "3, 4", "none"]


def test_question_without_options_is_kept():
    assert split_inline_options("How many?") == ("How many?", [])


def test_unknown_benchmark_lists_valid_ones():
    with pytest.raises(ValueError, match="valid benchmarks: vmcbench, mmstar"):
        get_benchmark("mmbench")


def test_missing_file():
    with pytest.raises(SourceError, match="does not exist"):
        load_rows(get_benchmark("mmstar"), "/no/such/file.parquet", None)


def test_unreadable_file(tmp_path):
    path = tmp_path / "broken.parquet"
    path.write_bytes(b"definitely not parquet")
    with pytest.raises(SourceError, match="could not read"):
        load_rows(get_benchmark("mmstar"), str(path), None)


def test_wrong_schema_names_missing_columns(tmp_path, data):
    with pytest.raises(SchemaError, match="missing column.*l2_category"):
        load_rows(get_benchmark("mmstar"), str(data["vmcbench"]), None)


def test_empty_dataset(tmp_path):
    path = tmp_path / "empty.jsonl"
    path.write_text("")
    with pytest.raises(SourceError, match="no rows"):
        load_rows(get_benchmark("mmstar"), str(path), None)


def test_duplicate_ids(tmp_path):
    rows = mmstar_rows()
    rows[1]["index"] = rows[0]["index"]
    with pytest.raises(SourceError, match="duplicate ids.*0"):
        load_rows(get_benchmark("mmstar"), str(write_parquet(rows, tmp_path / "d.parquet")), None)


def test_stratified_subsample_covers_every_stratum_and_is_seeded(data):
    items = samples("mmstar", data["mmstar"]) * 1
    picked = subsample(items, 6, seed=1)
    assert len(picked) == 6 and len({stratum(s) for s in picked}) == 6
    assert [s.id for s in picked] == [s.id for s in subsample(items, 6, seed=1)]
    assert [s.id for s in picked] != [s.id for s in subsample(items, 6, seed=2)]
    vmc = samples("vmcbench", data["vmcbench"])
    assert {s.category for s in subsample(vmc, 7, seed=0)} == {s.category for s in vmc}
