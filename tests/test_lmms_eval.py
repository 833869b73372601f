"""extract-think under lmms-eval: its own CLI and Python API, offline, on tiny random-weight models.

The tasks are lmms-eval's MMStar and V*Bench functions (prompts, scorers, aggregations) over local parquet
files (tests/lmms_tasks.py). The model is found through the `lmms_eval.models` entry point, as users get it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from agent.trace import Result
from graphs.lmms.tasks import mmstar_task, vstar_task, write_hf_parquet
from evals.synthetic.benchmarks import mmstar_rows, vstar_hub_rows
from tests.lmms_tasks import file_task
from tools.tiny.forced import ForceTokens, think, tool_call

SETTINGS = {"greedy": True, "max_new_tokens": 16, "thinking_budget": 8, "perceiver_max_new_tokens": 8}


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    from tools.backends.loading import quiet_transformers
    from tools.tiny.models import build_all

    quiet_transformers()
    built = build_all(tmp_path_factory.mktemp("lmms-tiny"), ("llava_onevision",))
    return {"reasoner": str(built.reasoner), "perceiver": str(built.perceivers["llava_onevision"])}


def mmstar_docs() -> list[dict]:
    """The synthetic MMStar rows, each question numbered so that the steering can tell them apart."""
    rows = mmstar_rows()
    for row in rows:
        row["question"] = row["question"].replace("?", f" (item {row['index']})?", 1)
    return rows


def vstar_docs() -> list[dict]:
    rows = vstar_hub_rows(size=(320, 240))
    for row in rows:
        row["text"] = row["text"].replace("?", f" (item {row['question_id']})?", 1)
    return rows


@pytest.fixture(scope="module")
def tasks(tmp_path_factory) -> Path:
    """xt_mmstar (18 docs), xt_vstar (4 docs, 320x240) and xt_mmstar_broken (images as files, doc 1's truncated:
    an image the harness decodes itself, a Hugging Face Image feature, crashes lmms-eval before any model)."""
    root = tmp_path_factory.mktemp("lmms-tasks")
    mmstar_task(root, "xt_mmstar", write_hf_parquet(mmstar_docs(), root / "data" / "mmstar.parquet"))
    vstar_task(root, "xt_vstar", write_hf_parquet(vstar_docs(), root / "data" / "vstar.parquet"))
    file_task(root, "xt_mmstar_broken", mmstar_rows(corrupt=(1,)))
    return root


@pytest.fixture(scope="module")
def task_manager(tasks):
    from lmms_eval.tasks import TaskManager

    return TaskManager(include_path=str(tasks), include_defaults=False)


def evaluate(model, task_manager, names: list[str], limit: int | None = None) -> dict:
    from lmms_eval.evaluator import simple_evaluate

    return simple_evaluate(model=model, tasks=names, task_manager=task_manager, log_samples=True, limit=limit)


def golds() -> dict[str, str]:
    """Gold letter by question text, for every doc of the MMStar and V* files."""
    from evals.benchmarks import split_inline_options, vstar_text_row

    table = {split_inline_options(row["question"])[0]: row["answer"] for row in mmstar_docs()}
    table.update({vstar_text_row(row)["question"]: row["label"] for row in vstar_docs()})
    assert len(table) == 22
    return table


class ToGold:
    """Forced decoding keyed by the question (requests run concurrently, so their order means nothing):
    the first turn calls the extract tool, the next answers the gold letter after naming a wrong one."""

    def __init__(self):
        self.golds = golds()

    def __call__(self, request, tokenizer):
        first_user = next(m.content for m in request.messages if m.role == "user")
        question = first_user.rsplit("Question:", 1)[-1].strip().splitlines()[0]
        gold = self.golds[question]
        wrong = "A" if gold != "A" else "B"
        if not any(m.role == "tool" for m in request.messages):
            text = think("I need to see the colour.") + tool_call("the colour of the object")
        else:
            text = think("The description settles it.") + f"{wrong}. looked likely at first, but no.\nAnswer: {gold}"
        ids = tokenizer.encode(text, add_special_tokens=False)
        return [ForceTokens(ids, tokenizer.convert_tokens_to_ids("<|im_end|>"))]


def steered_agent(models):
    from graphs.api import ExtractThink
    from tools.backends.hf_reasoner import TransformersReasoner

    reasoner = TransformersReasoner(models["reasoner"], extra_logits_processors=ToGold())
    return ExtractThink(reasoner=reasoner, perceiver=models["perceiver"], device="cpu")


def test_entry_point_registers_the_model():
    from lmms_eval import models as registry

    from graphs.lmms.model import ExtractThinkLMM

    assert registry.get_model("extract_think") is ExtractThinkLMM


@pytest.mark.parametrize("response, expected", [("letter", 1.0), ("text", 0.0)])
def test_steered_iterative_run_scores_by_lmms_evals_own_scorers(models, task_manager, tmp_path, response, expected):
    """The agent's visible answer names a wrong letter first; only the letter response scores 100%. V* asks for
    max_new_tokens 16, shorter than the forced answer: obeyed, it would cut the `Answer:` line."""
    from graphs.lmms.model import ExtractThinkLMM

    lm = ExtractThinkLMM(agent=steered_agent(models), mode="iterative", response=response, concurrency=4,
                         max_new_tokens=120, thinking_budget=60, perceiver_max_new_tokens=8, trace_dir=str(tmp_path))
    results = evaluate(lm, task_manager, ["xt_mmstar", "xt_vstar"])["results"]
    assert (results["xt_mmstar"]["average,none"], results["xt_vstar"]["vstar_overall_acc,none"] / 100) == (
        expected, expected)


def test_steered_samples_carry_both_models_token_counts(models, task_manager, tmp_path):
    from graphs.lmms.model import ExtractThinkLMM

    lm = ExtractThinkLMM(agent=steered_agent(models), max_new_tokens=120, thinking_budget=60,
                         perceiver_max_new_tokens=8, trace_dir=str(tmp_path))
    counts = evaluate(lm, task_manager, ["xt_vstar"], limit=2)["samples"]["xt_vstar"][0]["token_counts"][0]
    assert (counts["extraction_calls"], counts["input_tokens"], counts["output_tokens"]) == (
        1, counts["reasoner_input_tokens"] + counts["perceiver_input_tokens"],
        counts["reasoner_output_tokens"] + counts["perceiver_output_tokens"])
    assert counts["perceiver_output_tokens"] > 0 and counts["reasoning_tokens"] > 0


FIRST_STEP = {"iterative": ("reason", "iterate"), "iterative+look": ("extract", "look"),
              "extract": ("reason", "observe"), "caption": ("extract", "caption"), "direct": ("extract", "direct")}


@pytest.mark.parametrize("mode", list(FIRST_STEP))
def test_every_regime_runs(models, task_manager, tmp_path, mode):
    from graphs.lmms.model import ExtractThinkLMM

    lm = ExtractThinkLMM(**models, mode=mode, device="cpu", trace_dir=str(tmp_path), **SETTINGS)
    samples = evaluate(lm, task_manager, ["xt_mmstar"], limit=2)["samples"]["xt_mmstar"]
    traces = [Result.model_validate_json((tmp_path / "xt_mmstar" / mode / f"{s['doc_id']}.json").read_text())
              for s in samples]
    assert [(t.steps[0].kind, t.steps[0].purpose) for t in traces] == [FIRST_STEP[mode]] * 2


def test_broken_image_gives_an_empty_response_and_the_run_goes_on(models, task_manager, tmp_path):
    from graphs.lmms.model import ExtractThinkLMM

    lm = ExtractThinkLMM(**models, mode="caption", device="cpu", trace_dir=str(tmp_path), **SETTINGS)
    samples = evaluate(lm, task_manager, ["xt_mmstar_broken"], limit=3)["samples"]["xt_mmstar_broken"]
    by_doc = {s["doc_id"]: s for s in samples}
    error = json.loads((tmp_path / "xt_mmstar_broken" / "caption" / "1.error.json").read_text())
    assert (by_doc[1]["resps"], sorted(by_doc), bool(error["error"])) == ([[""]], [0, 1, 2], True)
    assert (tmp_path / "xt_mmstar_broken" / "caption" / "2.json").exists()


def test_loglikelihood_names_the_tasks_that_need_it(models):
    from graphs.lmms.model import ExtractThinkLMM

    with pytest.raises(NotImplementedError, match="multiple_choice"):
        ExtractThinkLMM(**models, device="cpu").loglikelihood([])


@pytest.mark.parametrize("args, message", [({"mode": "fast"}, "unknown mode"), ({"response": "x"}, "unknown response"),
                                           ({"max_extractoins": 2}, "unknown model_args max_extractoins"),
                                           ({"max_extractions": -1}, "max_extractions")])
def test_bad_model_args_are_named(models, args, message):
    from graphs.lmms.model import ExtractThinkLMM

    with pytest.raises(ValueError, match=message):
        ExtractThinkLMM(**models, device="cpu", **args)


def test_cli_run_writes_results_samples_and_traces(models, tasks, tmp_path):
    """`python -m lmms_eval --model extract_think`: the CLI exits 0 even when a run failed, so check its files."""
    traces, out = tmp_path / "traces", tmp_path / "out"
    model_args = ",".join([f"reasoner={models['reasoner']}", f"perceiver={models['perceiver']}", "mode=extract",
                           "greedy=true", "max_new_tokens=16", "thinking_budget=8", "perceiver_max_new_tokens=8",
                           f"trace_dir={traces}"])
    command = [sys.executable, "-m", "lmms_eval", "--model", "extract_think", "--model_args", model_args,
               "--tasks", "xt_mmstar,xt_vstar", "--include_path", str(tasks), "--limit", "3", "--device", "cpu",
               "--log_samples", "--output_path", str(out)]
    run = subprocess.run(command, check=False, capture_output=True, text=True, timeout=600,
                         env={**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"})
    assert run.returncode == 0, run.stderr[-3000:]
    results = json.loads(next(out.rglob("*_results.json")).read_text())
    assert {"xt_mmstar", "xt_vstar"} <= set(results["results"]), run.stderr[-3000:]
    for task in ("xt_mmstar", "xt_vstar"):
        lines = next(out.rglob(f"*_samples_{task}.jsonl")).read_text().splitlines()
        assert sorted(json.loads(line)["doc_id"] for line in lines) == [0, 1, 2]
        assert sorted(p.name for p in (traces / task / "extract").glob("*.json")) == ["0.json", "1.json", "2.json"]


def test_a_trace_opens_in_the_viewer(models, task_manager, tmp_path):
    from graphs.lmms.model import ExtractThinkLMM
    from evals.viewer.page import write_page

    lm = ExtractThinkLMM(**models, mode="caption", device="cpu", trace_dir=str(tmp_path / "t"), **SETTINGS)
    evaluate(lm, task_manager, ["xt_vstar"], limit=1)
    page = write_page([tmp_path / "t" / "xt_vstar" / "caption" / "0.json"], tmp_path / "page.html")
    assert "data:image/" in Path(page).read_text()


def test_data_parallel_ranks_split_the_docs_and_write_their_own_traces(models, tasks, tmp_path):
    """Two ranks (torchrun, as `accelerate launch` starts them; CPU here, one GPU per rank on CUDA): every doc
    answered once, every trace written once, and the padding lmms-eval adds to the shorter rank not run."""
    traces, out = tmp_path / "traces", tmp_path / "out"
    model_args = ",".join([f"reasoner={models['reasoner']}", f"perceiver={models['perceiver']}", "mode=caption",
                           "greedy=true", "max_new_tokens=16", "perceiver_max_new_tokens=8", f"trace_dir={traces}"])
    command = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "-m", "lmms_eval",
               "--model", "extract_think", "--model_args", model_args, "--tasks", "xt_mmstar,xt_vstar",
               "--include_path", str(tasks), "--limit", "5", "--device", "cpu", "--log_samples",
               "--output_path", str(out)]
    run = subprocess.run(command, check=False, capture_output=True, text=True, timeout=600,
                         env={**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"})
    assert "Running on rank 1" in run.stderr + run.stdout, run.stderr[-3000:]
    for task, docs in (("xt_mmstar", 5), ("xt_vstar", 4)):
        lines = next(out.rglob(f"*_samples_{task}.jsonl")).read_text().splitlines()
        assert sorted(json.loads(line)["doc_id"] for line in lines) == list(range(docs)), run.stderr[-3000:]
        names = sorted(p.name for p in (traces / task / "caption").iterdir())
        assert names == [f"{i}.json" for i in range(docs)]


def test_same_outputs_as_xthink_eval_on_the_same_file(models, tmp_path):
    """scripts/compare_lmms_eval.py: `xthink eval` and lmms-eval on one MMStar file give the same raw output for
    every item (same question, options, images and settings reach the agent) and the same accuracy."""
    script = Path(__file__).resolve().parents[1] / "scripts" / "compare_lmms_eval.py"
    run = subprocess.run([sys.executable, str(script), "--reasoner", models["reasoner"], "--perceiver",
                          models["perceiver"], "--out", str(tmp_path), "--mode", "extract"], check=False,
                         capture_output=True, text=True, timeout=900, env={**os.environ, "HF_HUB_OFFLINE": "1"})
    assert run.returncode == 0, run.stderr[-3000:]
    row = next(line for line in (tmp_path / "comparison.md").read_text().splitlines() if line.startswith("| extract"))
    cells = [cell.strip() for cell in row.strip("|").split("|")]
    assert (cells[1] == cells[2], cells[5], cells[6]) == (True, "18/18", "none")
