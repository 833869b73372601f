"""Local lmms-eval tasks: lmms-eval's own MMStar and V*Bench functions over local parquet files, offline.

lmms-eval's built-in `mmstar` and `vstar_bench` load the hub. These task YAMLs name the same prompt,
scorer and aggregation functions (`!function lmms_eval.tasks.mmstar.utils...`) over a local file
(`dataset_path: parquet`, an absolute `data_files` path), so a run needs no network: for trials with the
tiny models, for tests, and for comparing `xthink eval` and lmms-eval on one file. The parquet must hold
`image` as a Hugging Face `Image` feature (lmms-eval's `doc_to_visual` calls `.convert` on it), which
`write_hf_parquet` ensures.
"""

from __future__ import annotations

from pathlib import Path

MMSTAR_METRICS = ("coarse perception", "fine-grained perception", "instance reasoning", "logical reasoning",
                  "science & technology", "math", "average")

MMSTAR_YAML = """task: {task}
dataset_path: parquet
dataset_kwargs:
  data_files:
    val: {path}
test_split: val
output_type: generate_until
doc_to_visual: !function {doc_to_visual}
doc_to_text: !function lmms_eval.tasks.mmstar.utils.mmstar_doc_to_text
doc_to_target: "answer"
process_results: !function lmms_eval.tasks.mmstar.utils.mmstar_process_results
metric_list:
{metrics}
lmms_eval_specific_kwargs:
  default:
    pre_prompt: ""
    post_prompt: "\\nAnswer with the option's letter from the given choices directly"
metadata:
  - version: 0.0
"""

VSTAR_YAML = """task: {task}
dataset_path: parquet
dataset_kwargs:
  data_files:
    test: {path}
test_split: test
output_type: generate_until
doc_to_visual: !function lmms_eval.tasks.vstar_bench.utils.vstar_doc_to_visual
doc_to_text: !function lmms_eval.tasks.vstar_bench.utils.vstar_doc_to_text
doc_to_target: "label"
generation_kwargs:
  max_new_tokens: 16
  temperature: 0
  top_p: 1.0
  num_beams: 1
  do_sample: false
process_results: !function lmms_eval.tasks.vstar_bench.utils.vstar_process_results
metric_list:
  - metric: vstar_overall_acc
    aggregation: !function lmms_eval.tasks.vstar_bench.utils.vstar_aggregate_results
    higher_is_better: true
lmms_eval_specific_kwargs:
  default:
    pre_prompt: ""
    post_prompt: "\\nAnswer with the option's letter from the given choices directly."
metadata:
  - version: 0.0
"""


def write_hf_parquet(rows: list[dict], path: Path) -> Path:
    """Rows -> parquet with `image` as a Hugging Face Image feature (lmms-eval's tasks call `.convert`)."""
    from datasets import Dataset, Image

    path.parent.mkdir(parents=True, exist_ok=True)
    Dataset.from_list(rows).cast_column("image", Image()).to_parquet(str(path))
    return path


def mmstar_task(folder: Path, task: str, data: Path,
                doc_to_visual: str = "lmms_eval.tasks.mmstar.utils.mmstar_doc_to_visual") -> Path:
    """lmms-eval's MMStar task over a local file; `doc_to_visual` may name another function (a task whose
    images are files its own function opens)."""
    metrics = "\n".join(f"  - metric: {name}\n    aggregation: !function lmms_eval.tasks.mmstar.utils."
                        f"mmstar_aggregate_results\n    higher_is_better: true" for name in MMSTAR_METRICS)
    return write_task(folder / f"{task}.yaml", MMSTAR_YAML.format(task=task, path=data.resolve(), metrics=metrics,
                                                                        doc_to_visual=doc_to_visual))


def vstar_task(folder: Path, task: str, data: Path) -> Path:
    return write_task(folder / f"{task}.yaml", VSTAR_YAML.format(task=task, path=data.resolve()))


def write_local_tasks(root: Path | str, seed: int = 0) -> dict[str, Path]:
    """Synthetic MMStar (18 docs) and V* (4 docs) files and their tasks `mmstar_local` and `vstar_local` under
    root (pass root as lmms-eval's `--include_path`). Returns the data files."""
    from evals.synthetic.benchmarks import mmstar_rows, vstar_hub_rows

    root = Path(root)
    data = {"mmstar_local": write_hf_parquet(mmstar_rows(seed=seed), root / "data" / "mmstar.parquet"),
            "vstar_local": write_hf_parquet(vstar_hub_rows(seed=seed, size=(640, 480)),
                                            root / "data" / "vstar.parquet")}
    mmstar_task(root, "mmstar_local", data["mmstar_local"])
    vstar_task(root, "vstar_local", data["vstar_local"])
    return data


def write_task(path: Path, text: str) -> Path:
    """Write one task YAML (or any text), creating its folder."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path
