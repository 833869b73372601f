"""The eval graph end to end on synthetic MMStar and VMCBench files with tiny models, all four regimes."""

from __future__ import annotations

import gc
import json
import os
import subprocess
import sys
from collections import Counter

import pytest
from typer.testing import CliRunner

from evals.runner import BenchSpec, EvalPlan
from evals.run_store import RunStore, read_records
from tools.files.folders import RunFolderError
from evals.synthetic.benchmarks import mmstar_rows, vmcbench_rows, write_parquet
from graphs import eval as eval_graph
from graphs.api import AskOptions, ExtractThink
from graphs.cli.app import app
from tests.kill import kill_when, line_count
from tools.tiny.forced import Constant
from tools.backends.hf_reasoner import TransformersReasoner
from tools.backends.loading import Placement

MODES = ["iterative", "extract", "caption", "direct"]
COLUMNS = ["regime", "n", "OCR-VQA", "TextVQA", "ScienceQA", "VQA2", "GQA", "VizWiz", "In-domain avg",
           "CP", "FP", "IR", "LR", "ST", "Math", "MMStar avg"]


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp("evaldata")
    return {
        "mmstar": write_parquet(mmstar_rows(corrupt=(4,)), root / "mmstar.parquet"),
        "vmcbench": write_parquet(vmcbench_rows(per_source=1), root / "vmcbench.parquet"),
    }


def run(plan: EvalPlan, agent: ExtractThink) -> list[dict]:
    ctx = eval_graph.EvalContext(plan=plan, store=RunStore(plan.out), agent=agent)
    config = {"recursion_limit": eval_graph.RECURSION_LIMIT, "max_concurrency": plan.concurrency}
    return list(eval_graph.graph.stream({}, context=ctx, config=config, stream_mode="updates"))


def plan_for(tmp_path, data, tiny, **kw) -> EvalPlan:
    return EvalPlan(
        benches=[BenchSpec("mmstar", str(data["mmstar"])), BenchSpec("vmcbench", str(data["vmcbench"]))],
        modes=kw.pop("modes", MODES), out=tmp_path / "run", reasoner=str(tiny.reasoner),
        perceiver=str(tiny.perceivers["llava_onevision"]),
        settings=AskOptions(greedy=True, max_new_tokens=16, thinking_budget=8, perceiver_max_new_tokens=8), **kw,
    )


def test_all_regimes_scored_and_reported(tmp_path, data, tiny):
    plan = plan_for(tmp_path, data, tiny, concurrency=2)
    reasoner = TransformersReasoner(str(tiny.reasoner), Placement("cpu"), extra_logits_processors=Constant("Answer: A"))
    agent = ExtractThink(reasoner=reasoner, perceiver=plan.perceiver, device="cpu")
    run(plan, agent)
    records = read_records(plan.out)
    assert len(records) == 4 * (18 + 6), "the paper's six VMCBench sources only (ChartQA is left out)"
    by_regime = {m: {(r.benchmark, r.sample_id) for r in records if r.regime == m} for m in MODES}
    assert all(items == by_regime["iterative"] for items in by_regime.values()), "same items for every regime"
    broken = [r for r in records if r.benchmark == "mmstar" and r.sample_id == "4"]
    assert len(broken) == 4 and all(r.status == "error" and "image" in r.error for r in broken)
    for r in records:
        if r.status == "ok" and r.regime != "direct":
            assert r.pred == "A" and r.correct == (r.gold == "A") and r.method == "answer_line"
            assert (plan.out / r.trace).exists()
    table = json.loads((plan.out / "report" / "table.json").read_text())
    assert [row["regime"] for row in table] == MODES and list(table[0]) == COLUMNS
    iterative = [r for r in records if r.regime == "iterative" and r.status == "ok"]
    assert table[0]["n"] == len(iterative) == 23
    gqa = [r for r in iterative if r.category == "GQA"]
    assert table[0]["GQA"] == 100.0 * sum(r.correct for r in gqa) / len(gqa)
    for name in ("report.md", "table.csv", "cost.csv", "paired.csv", "trace_index.csv",
                 "accuracy_by_category.png", "accuracy_vs_calls.png"):
        assert (plan.out / "report" / name).stat().st_size > 0
    manifest = json.loads((plan.out / "run.json").read_text())
    assert manifest["identity"]["benchmarks"]["mmstar"]["content_hash"].startswith("sha256:")
    assert manifest["packages"]["transformers"] and manifest["identity"]["prompts_version"]

    result = CliRunner().invoke(app, ["report", str(plan.out), "--json"])
    assert result.exit_code == 0 and json.loads(result.stdout) == table


def test_rerun_skips_done_and_other_settings_are_refused(tmp_path, data, tiny):
    plan = plan_for(tmp_path, data, tiny, modes=["direct"], limit=3)
    agent = ExtractThink(reasoner=plan.reasoner, perceiver=plan.perceiver, device="cpu")
    agent.load_models("direct")
    gc.unfreeze()
    run(plan, agent)
    assert gc.get_freeze_count() > 100_000, "the loaded models are kept out of the GC's full passes"
    first = read_records(plan.out)
    assert len(first) == 6  # 3 per benchmark, stratified
    updates = run(plan, agent)
    assert not any("run_sample" in u for u in updates) and read_records(plan.out) == first
    changed = plan_for(tmp_path, data, tiny, modes=["direct"], limit=4)
    with pytest.raises(RunFolderError, match="different settings.*limit"):
        run(changed, agent)
    changed.resume = True
    run(changed, agent)
    assert len(read_records(plan.out)) == 8
    changed.restart, changed.resume = True, False
    run(changed, agent)
    assert len(read_records(plan.out)) == 8


def test_killed_run_resumes_with_every_sample_once(tmp_path, data, tiny):
    out = tmp_path / "killed"
    cmd = [sys.executable, "-m", "graphs.cli.app", "eval", "--bench", f"mmstar={data['mmstar']}",
           "--bench", f"vmcbench={data['vmcbench']}", "--mode", "extract", "--mode", "caption",
           "--reasoner", str(tiny.reasoner), "--perceiver", str(tiny.perceivers["llava"]), "--greedy",
           "--max-new-tokens", "48", "--perceiver-max-new-tokens", "24", "--thinking-budget", "32",
           "--device", "cpu", "--out", str(out)]
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    records = out / "records.jsonl"
    kill_when(cmd, lambda: line_count(records) >= 5)
    partial = records.read_text().count("\n")
    assert 5 <= partial < 48, "the kill must land part way through the run"
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    keys = Counter(r.key for r in read_records(out))
    assert len(keys) == 2 * 24 and set(keys.values()) == {1}
    lines = [json.loads(line) for line in records.read_text().splitlines()]
    assert len(lines) == 48, "no sample was written twice"
