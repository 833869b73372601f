"""A test-only lmms-eval task whose images are files opened by its own doc_to_visual (graphs/lmms/tasks.py has
the MMStar and V* tasks over parquet)."""

from __future__ import annotations

from pathlib import Path

from graphs.lmms.tasks import mmstar_task

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
    return mmstar_task(folder, task, data, doc_to_visual="tests.lmms_tasks.file_doc_to_visual")
