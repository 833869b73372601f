"""Eval scheduling: the paper's six VMCBench sources, error retries, settings hashes, shards, safe paths."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from evals.records import SampleRecord
from evals.report import build_report, to_markdown
from evals.runner import BenchSpec, EvalPlan, in_shard
from evals.run_store import RunStore, read_records
from evals.synthetic.benchmarks import mmstar_rows, vmcbench_rows, write_parquet
from graphs import eval as eval_graph
from graphs.api import AskOptions, ExtractThink
from graphs.cli.app import app
from tools.backends.hf_perceiver import TransformersPerceiver
from tools.backends.loading import Placement


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp("sched")
    return {
        "mmstar": write_parquet(mmstar_rows(), root / "mmstar.parquet"),
        "vmcbench": write_parquet(vmcbench_rows(per_source=1), root / "vmcbench.parquet"),
    }


def plan_for(out, data, tiny, benches=("mmstar", "vmcbench"), tokens=6, **kw) -> EvalPlan:
    return EvalPlan(benches=[BenchSpec(b, str(data[b])) for b in benches], modes=["direct"], out=out,
                    reasoner=str(tiny.reasoner), perceiver=str(tiny.perceivers["llava"]),
                    settings=AskOptions(greedy=True, perceiver_max_new_tokens=tokens), **kw)  # fmt: skip


def run(plan: EvalPlan, perceiver=None) -> None:
    agent = ExtractThink(reasoner=plan.reasoner, perceiver=perceiver or plan.perceiver, device="cpu")
    ctx = eval_graph.EvalContext(plan=plan, store=RunStore(plan.out), agent=agent)
    config = {"recursion_limit": eval_graph.RECURSION_LIMIT, "max_concurrency": plan.concurrency}
    list(eval_graph.graph.stream({}, context=ctx, config=config, stream_mode="updates"))


def test_vmcbench_runs_the_papers_six_sources_unless_all_sources(tmp_path, data, tiny):
    default = plan_for(tmp_path / "six", data, tiny, benches=("vmcbench",))
    run(default)
    assert {r.category for r in read_records(default.out)} == {"OCRVQA", "TextVQA", "ScienceQA", "VQAv2", "GQA",
                                                                "VizWiz"}
    wide = plan_for(tmp_path / "all", data, tiny, benches=("vmcbench",), all_sources=True)
    run(wide)
    report = build_report([wide.out])
    assert "ChartQA" in {r.category for r in read_records(wide.out)}
    assert report.table[0]["n"] == 6, "the other sources do not enter n"
    assert report.other_sources[0]["ChartQA"] is not None
    assert "## Other VMCBench sources" in to_markdown(report)


class FlakyPerceiver(TransformersPerceiver):
    """A real perceiver whose server is 'down' while `down` is set (the logic under test is the eval store)."""

    down = True

    def perceive(self, requests):
        if self.down:
            raise RuntimeError("perceiver server down")
        return super().perceive(requests)


def test_error_records_are_retried_unless_told_not_to(tmp_path, data, tiny):
    plan = plan_for(tmp_path / "run", data, tiny, benches=("mmstar",), limit=3)
    flaky = FlakyPerceiver(plan.perceiver, Placement("cpu"))
    run(plan, flaky)
    assert [r.status for r in read_records(plan.out)] == ["error"] * 3
    flaky.down = False
    plan.retry_errors = False
    run(plan, flaky)
    assert [r.status for r in read_records(plan.out)] == ["error"] * 3, "--no-retry-errors keeps them"
    plan.retry_errors = True
    run(plan, flaky)
    records = read_records(plan.out)
    assert len(records) == 3 and all(r.status == "ok" for r in records), "the rerun replaced every error"
    lines = (plan.out / "records.jsonl").read_text().splitlines()
    assert len(lines) == 6, "append-only: the error lines stay in the file"


def test_resume_with_new_settings_reports_them_apart(tmp_path, data, tiny):
    first = plan_for(tmp_path / "run", data, tiny, benches=("mmstar",), limit=3, tokens=6)
    run(first)
    second = plan_for(tmp_path / "run", data, tiny, benches=("mmstar",), limit=3, tokens=4, resume=True)
    run(second)
    records = read_records(second.out)
    assert len(records) == 6 and len({r.settings_hash for r in records}) == 2
    report = build_report([second.out])
    regimes = [row["regime"] for row in report.table]
    assert regimes[0] == "direct" and regimes[1].startswith("direct (earlier settings ")
    assert all(row["n"] == 3 for row in report.table), "no row mixes the two settings"
    assert any("earlier settings" in note for note in report.notes)


def test_shards_split_the_items_and_report_merges_them(tmp_path, data, tiny):
    whole = plan_for(tmp_path / "whole", data, tiny)
    run(whole)
    parts = []
    for k in (1, 2):
        plan = plan_for(tmp_path / f"shard{k}", data, tiny, shard=(k, 2))
        run(plan)
        parts.append({(r.benchmark, r.sample_id) for r in read_records(plan.out)})
    everything = {(r.benchmark, r.sample_id) for r in read_records(whole.out)}
    assert parts[0] and parts[1] and not parts[0] & parts[1] and parts[0] | parts[1] == everything
    merged = build_report([tmp_path / "shard1", tmp_path / "shard2"])
    alone = build_report([whole.out])
    assert len(merged.table) == 1 and merged.table[0]["n"] == alone.table[0]["n"]
    assert merged.notes == ["shard1+1: merged shards 1/2, 2/2"]
    assert "missing shard(s) 2/2" in build_report([tmp_path / "shard1"]).notes[0]
    side_by_side = build_report([tmp_path / "shard1", whole.out])
    assert [row["run"] for row in side_by_side.table] == ["shard1", "whole"], "other runs stay side by side"


def test_shard_is_deterministic():
    assert [in_shard("mmstar", str(i), (1, 3)) for i in range(30)] == [
        in_shard("mmstar", str(i), (1, 3)) for i in range(30)]
    assert sum(in_shard("mmstar", str(i), (k, 3)) for i in range(30) for k in (1, 2, 3)) == 30


def test_sample_ids_never_leave_the_run_folder(tmp_path, tiny):
    rows = mmstar_rows()[:2]
    rows[0]["index"], rows[1]["index"] = "../../../../escape", "/abs/path"
    data = {"mmstar": write_parquet(rows, tmp_path / "evil.parquet")}
    plan = plan_for(tmp_path / "run", data, tiny, benches=("mmstar",))
    plan.modes = ["direct", "caption"]
    run(plan)
    records = read_records(plan.out)
    assert len(records) == 4
    for r in records:
        path = (plan.out / r.trace).resolve()
        assert path.is_relative_to(plan.out.resolve()) and path.exists()
    assert not (tmp_path / "escape.json").exists()


def test_a_torn_last_line_is_cut_before_the_next_append(tmp_path):
    store = RunStore(tmp_path)
    store.open({"identity": {}})

    def record(i):
        return SampleRecord(regime="direct", benchmark="mmstar", sample_id=str(i), category="c", gold="A")

    store.append(record(1))
    with store.records_path.open("a") as handle:
        handle.write('{"regime": "direct", "benchmark": "mmstar", "sam')  # killed mid-write
    reopened = RunStore(tmp_path)
    reopened.open({"identity": {}})
    reopened.append(record(2))
    assert [r.sample_id for r in read_records(tmp_path)] == ["1", "2"], "the next record must not be lost"
    assert all(json.loads(line) for line in store.records_path.read_text().splitlines())


def test_records_finishing_together_share_an_fsync_and_each_is_on_disk_when_append_returns(tmp_path, monkeypatch):
    import threading

    from tools.files import records

    store = RunStore(tmp_path)
    store.open({"identity": {}})
    writes, real = [], records.append_lines

    def slow_disk(path, lines):  # the first write lasts until every sample has finished
        while not writes and store._appender._last < 40:
            threading.Event().wait(0.01)
        writes.append(len(lines))
        real(path, lines)

    monkeypatch.setattr(records, "append_lines", slow_disk)

    def finish(i):
        store.append(SampleRecord(regime="direct", benchmark="mmstar", sample_id=str(i), category="c", gold="A"))
        assert str(i) in {r.sample_id for r in read_records(tmp_path)}, "durable before append returns"

    threads = [threading.Thread(target=finish, args=(i,)) for i in range(40)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(int(r.sample_id) for r in read_records(tmp_path)) == list(range(40))
    assert sum(writes) == 40 and len(writes) == 2, "the lines queued during a write go out together in the next"


def test_a_failed_record_write_fails_every_sample_in_it(tmp_path, monkeypatch):
    from tools.files import records

    store = RunStore(tmp_path)
    store.open({"identity": {}})
    record = SampleRecord(regime="direct", benchmark="mmstar", sample_id="1", category="c", gold="A")
    monkeypatch.setattr(records, "append_lines", lambda path, lines: (_ for _ in ()).throw(OSError("disk full")))
    with pytest.raises(OSError):
        store.append(record)
    monkeypatch.undo()
    assert not store.is_done(record.store_key) and store.append(record), "a failed sample can be written later"


def test_bad_shard_and_out_file_are_one_line_errors(tiny, data, tmp_path):
    base = ["eval", "--bench", f"mmstar={data['mmstar']}", "--mode", "direct", "--perceiver",
            str(tiny.perceivers["llava"]), "--device", "cpu"]
    bad = CliRunner().invoke(app, [*base, "--out", str(tmp_path / "o"), "--shard", "3/2"])
    assert bad.exit_code == 2 and "K must be between 1 and N" in bad.output and "Traceback" not in bad.output
    existing = tmp_path / "file.txt"
    existing.write_text("x")
    bad = CliRunner().invoke(app, [*base, "--out", str(existing)])
    assert bad.exit_code == 2 and "is a file" in bad.output and "Traceback" not in bad.output


def test_default_concurrency_suits_the_backend(tiny):
    from evals.runner import default_concurrency

    local = ExtractThink(reasoner=str(tiny.reasoner), perceiver=str(tiny.perceivers["llava"]), device="cpu")
    served = ExtractThink(reasoner="http://127.0.0.1:9/v1", perceiver=str(tiny.perceivers["llava"]), device="cpu")
    assert default_concurrency(local, "cpu") == 4 and default_concurrency(served, "cpu") == 32
