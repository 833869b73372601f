"""`xthink eval` and lmms-eval (`--model extract_think`) on the same MMStar file: accuracy per regime, side by side.

Usage: python scripts/compare_lmms_eval.py --reasoner R --perceiver P --out DIR [--mmstar FILE.parquet]
       [--mode iterative ...] [--max-new-tokens 32] [--perceiver-max-new-tokens 16]
Without --mmstar it writes the synthetic MMStar file (18 items, graphs/lmms/tasks.py). Both harnesses run greedy
with the same settings; xthink eval scores with its own judge-free rules, lmms-eval with MMStar's own scorer and
aggregation over the letter our model returns. The table lists per regime both accuracies and the items whose
predictions differ (with both predictions), so every difference can be traced to an item.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
REGIMES = ("iterative", "iterative+look", "extract", "caption", "direct")


def run_xthink(args, data: Path, out: Path) -> dict[str, dict]:
    """xthink eval's per-item predictions and its MMStar average, per regime."""
    command = ["xthink", "eval", "--bench", f"mmstar={data}", "--out", str(out), "--greedy", "--restart",
               "--reasoner", args.reasoner, "--perceiver", args.perceiver, "--device", args.device,
               "--max-new-tokens", str(args.max_new_tokens),
               "--perceiver-max-new-tokens", str(args.perceiver_max_new_tokens)]
    for mode in args.mode:
        command += ["--mode", mode]
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
    table = {row["regime"]: row for row in json.loads((out / "report" / "table.json").read_text())}
    records = [json.loads(line) for line in (out / "records.jsonl").read_text().splitlines() if line.strip()]
    return {mode: {"acc": table[mode]["MMStar avg"],
                   "preds": {r["sample_id"]: r.get("pred") for r in records if r["regime"] == mode},
                   "raw": {r["sample_id"]: r.get("raw_output") for r in records if r["regime"] == mode}}
            for mode in args.mode}


def run_lmms(args, tasks: Path, response: str, traces: Path) -> dict[str, dict]:
    """lmms-eval's MMStar average and the response per item, per regime (one simple_evaluate each); the raw
    final outputs come from the traces."""
    from lmms_eval.evaluator import simple_evaluate
    from lmms_eval.tasks import TaskManager

    from agent.trace import Result
    from graphs.lmms.model import ExtractThinkLMM

    manager = TaskManager(include_path=str(tasks), include_defaults=False)
    out = {}
    for mode in args.mode:
        model = ExtractThinkLMM(reasoner=args.reasoner, perceiver=args.perceiver, mode=mode, device=args.device,
                                greedy=True, max_new_tokens=args.max_new_tokens, response=response,
                                perceiver_max_new_tokens=args.perceiver_max_new_tokens, trace_dir=str(traces))
        result = simple_evaluate(model=model, tasks=["mmstar_local"], task_manager=manager, log_samples=True)
        samples = result["samples"]["mmstar_local"]
        raw = {str(s["doc"]["index"]): Result.model_validate_json(
            (traces / "mmstar_local" / mode / f"{s['doc_id']}.json").read_text()).final_output for s in samples}
        out[mode] = {"acc": 100 * result["results"]["mmstar_local"]["average,none"],
                     "preds": {str(s["doc"]["index"]): s["filtered_resps"][0] or None for s in samples}, "raw": raw}
    return out


def table(xthink: dict, lmms: dict, text: dict) -> str:
    """Per regime: both accuracies, lmms-eval's on the visible text (response=text), how many items have a
    letter, identical raw outputs, and every item whose predicted letter differs."""
    header = ("| regime | xthink eval | lmms-eval (letter) | lmms-eval (response=text) | items with a letter | "
              "identical raw outputs | items predicted differently |")
    lines = [header, "|---|---|---|---|---|---|---|"]
    for mode in xthink:
        a, b = xthink[mode]["preds"], lmms[mode]["preds"]
        ids = sorted(set(a) | set(b), key=int)
        differ = [f"{i}: {a.get(i)} vs {b.get(i)}" for i in ids if a.get(i) != b.get(i)]
        same_raw = sum(xthink[mode]["raw"].get(i) == lmms[mode]["raw"].get(i) for i in ids)
        lines.append(f"| {mode} | {xthink[mode]['acc']:.1f} | {lmms[mode]['acc']:.1f} | {text[mode]['acc']:.1f} | "
                     f"{sum(v is not None for v in b.values())}/{len(ids)} | {same_raw}/{len(ids)} | "
                     f"{'; '.join(differ) or 'none'} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reasoner", required=True)
    parser.add_argument("--perceiver", required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--mmstar", type=Path, help="an MMStar parquet with Hugging Face Image features")
    parser.add_argument("--mode", action="append", choices=REGIMES)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--max-new-tokens", type=int, default=32)
    parser.add_argument("--perceiver-max-new-tokens", type=int, default=16)
    args = parser.parse_args()
    args.mode = args.mode or list(REGIMES)
    from graphs.lmms.tasks import mmstar_task, write_local_tasks

    tasks = args.out / "tasks"
    data = args.mmstar.resolve() if args.mmstar else write_local_tasks(tasks)["mmstar_local"]
    mmstar_task(tasks, "mmstar_local", data)
    xthink = run_xthink(args, data, args.out / "xthink-run")
    lmms = run_lmms(args, tasks, "letter", args.out / "traces-letter")
    visible = run_lmms(args, tasks, "text", args.out / "traces-text")
    text = table(xthink, lmms, visible)
    (args.out / "comparison.md").write_text(text + "\n")
    sys.stdout.write(text + "\n")


if __name__ == "__main__":
    main()
