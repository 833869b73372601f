"""A test-only lmms-eval task whose images are files opened by its own doc_to_visual (evals/lmms_tasks.py has
the MMStar and V* tasks over parquet)."""

from __future__ import annotations

from pathlib import Path

from evals.lmms_tasks import write_task

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
    return write_task(folder / f"{task}.yaml", FILE_YAML.format(task=task, path=data.resolve()))
