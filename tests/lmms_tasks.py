"""Local lmms-eval tasks for the tests: lmms-eval's own MMStar and V*Bench functions over local parquet files.

The parquet files hold the synthetic rows of evals/synthetic.py with `image` as a Hugging Face `Image` feature
(written through `datasets`), which is what lmms-eval's `doc_to_visual` functions expect. Each task YAML names
`dataset_path: parquet` with an absolute `data_files` path, so nothing touches the hub.
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
doc_to_visual: !function lmms_eval.tasks.mmstar.utils.mmstar_doc_to_visual
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


FILE_YAML = """task: {task}
dataset_path: parquet
dataset_kwargs:
  data_files:
    val: {path}
test_split: val
output_type: generate_until
doc_to_visual: !function tests.lmms_tasks.file_doc_to_visual
doc_to_text: !function lmms_eval.tasks.mmstar.utils.mmstar_doc_to_text
doc_to_target: "answer"
process_results: !function lmms_eval.tasks.mmstar.utils.mmstar_process_results
metric_list:
  - metric: average
    aggregation: !function lmms_eval.tasks.mmstar.utils.mmstar_aggregate_results
    higher_is_better: true
lmms_eval_specific_kwargs:
  default:
    pre_prompt: ""
    post_prompt: ""
metadata:
  - version: 0.0
"""


def file_doc_to_visual(doc):
    """Many lmms-eval tasks keep images as files next to the data and open them in doc_to_visual (the harness
    itself never decodes them): an unreadable file fails here, inside the model's call."""
    from PIL import Image

    return [Image.open(doc["image_path"]).convert("RGB")]


def write_hf_parquet(rows: list[dict], path: Path) -> Path:
    """Rows -> parquet with `image` as a Hugging Face Image feature (lmms-eval's tasks call `.convert`)."""
    from datasets import Dataset, Image

    path.parent.mkdir(parents=True, exist_ok=True)
    Dataset.from_list(rows).cast_column("image", Image()).to_parquet(str(path))
    return path


def mmstar_task(folder: Path, task: str, data: Path) -> Path:
    metrics = "\n".join(f"  - metric: {name}\n    aggregation: !function lmms_eval.tasks.mmstar.utils."
                        f"mmstar_aggregate_results\n    higher_is_better: true" for name in MMSTAR_METRICS)
    return _write(folder / f"{task}.yaml", MMSTAR_YAML.format(task=task, path=data.resolve(), metrics=metrics))


def vstar_task(folder: Path, task: str, data: Path) -> Path:
    return _write(folder / f"{task}.yaml", VSTAR_YAML.format(task=task, path=data.resolve()))


def file_task(folder: Path, task: str, rows: list[dict]) -> Path:
    """An MMStar-like task whose images are PNG files named in an `image_path` column."""
    images = folder / "files"
    images.mkdir(parents=True, exist_ok=True)
    flat = []
    for row in rows:
        path = images / f"{task}_{row['index']}.png"
        path.write_bytes(row["image"]["bytes"])
        flat.append({k: v for k, v in row.items() if k not in ("image", "meta_info")} | {"image_path": str(path)})
    from datasets import Dataset

    data = folder / "data" / f"{task}.parquet"
    data.parent.mkdir(parents=True, exist_ok=True)
    Dataset.from_list(flat).to_parquet(str(data))
    return _write(folder / f"{task}.yaml", FILE_YAML.format(task=task, path=data.resolve()))


def _write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path
