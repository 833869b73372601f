"""The VET dataset folder: parquet shards with embedded images, the same pairs as LLaVA JSON, a card.

Layout of DIR (written by `xthink vet-data`, read by `xthink vet-train`):
- `data/train-0000N-of-0000M.parquet`: columns id, image ({bytes, path}, the HF Image layout), instruction,
  target, style; loadable with `datasets.load_dataset("parquet", data_dir=DIR + "/data")`;
- `README.md`: a dataset card whose `configs` entry points at the shards, so `datasets.load_dataset(DIR)`
  finds them among the other files;
- `llava.json`: the pairs as LLaVA conversations (`<image>\\n` + instruction, then the target), image paths
  relative to DIR, for LLaVA-NeXT-style trainers;
- `images/`: the training images, exactly as the perceiver sees them at inference.
The shards are rewritten from the records at the end of every run, so they always hold every finished pair.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

SHARD_ROWS = 2000
CARD = """---
configs:
- config_name: default
  data_files:
  - split: train
    path: data/*.parquet
---
# Visual extraction tuning pairs

Written by `xthink vet-data`; see manifest.json for the teacher, prompts, settings and source hash.
Each row: an image, the perceiver's instruction (human turn) and the teacher's description (target).
"""


@dataclass(frozen=True)
class Pair:
    id: str
    image: str  # relative to the dataset folder
    instruction: str
    target: str
    style: str = "paper"


class DatasetError(ValueError):
    """A folder is not a VET dataset; the message says what to pass."""


def write_dataset(root: Path, pairs: list[Pair]) -> list[Path]:
    """Rewrite the shards, the LLaVA JSON and the card from all pairs (sorted by id: reruns are stable)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    root = Path(root)
    pairs = sorted(pairs, key=lambda p: p.id)
    data = root / "data"
    data.mkdir(parents=True, exist_ok=True)
    for old in data.glob("*.parquet"):
        old.unlink()
    chunks = [pairs[i : i + SHARD_ROWS] for i in range(0, len(pairs), SHARD_ROWS)] or [[]]
    paths = []
    for n, chunk in enumerate(chunks):
        table = pa.Table.from_pylist([_row(root, p) for p in chunk], schema=_schema())
        path = data / f"train-{n:05d}-of-{len(chunks):05d}.parquet"
        pq.write_table(table, path)
        paths.append(path)
    (root / "llava.json").write_text(json.dumps([_llava(p) for p in pairs], indent=1, ensure_ascii=False))
    (root / "README.md").write_text(CARD)
    return paths


def _schema():
    import pyarrow as pa

    features = {"id": {"dtype": "string", "_type": "Value"}, "image": {"_type": "Image"},
                "instruction": {"dtype": "string", "_type": "Value"}, "target": {"dtype": "string", "_type": "Value"},
                "style": {"dtype": "string", "_type": "Value"}}  # fmt: skip
    image = pa.struct([("bytes", pa.binary()), ("path", pa.string())])
    fields = [pa.field("id", pa.string()), pa.field("image", image), pa.field("instruction", pa.string()),
              pa.field("target", pa.string()), pa.field("style", pa.string())]  # fmt: skip
    # The `huggingface` metadata makes `datasets` decode the image column as PIL images.
    return pa.schema(fields, metadata={"huggingface": json.dumps({"info": {"features": features}})})


def _row(root: Path, pair: Pair) -> dict:
    return {"id": pair.id, "image": {"bytes": (root / pair.image).read_bytes(), "path": pair.image},
            "instruction": pair.instruction, "target": pair.target, "style": pair.style}  # fmt: skip


def _llava(pair: Pair) -> dict:
    return {"id": pair.id, "image": pair.image, "conversations": [
        {"from": "human", "value": "<image>\n" + pair.instruction}, {"from": "gpt", "value": pair.target}]}


def load_pairs(root: Path):
    """The training rows of a dataset folder as a `datasets.Dataset` (image decoded to PIL, RGB)."""
    import datasets

    root = Path(root)
    files = sorted((root / "data").glob("*.parquet")) if root.is_dir() else []
    if not files:
        raise DatasetError(f"'{root}' holds no data/*.parquet shards; pass a folder written by `xthink vet-data`")
    ds = datasets.load_dataset("parquet", data_files=[str(f) for f in files], split="train")
    if len(ds) == 0:
        raise DatasetError(f"'{root}' holds no training pairs; run `xthink vet-data` until some items succeed")
    missing = {"image", "instruction", "target"} - set(ds.column_names)
    if missing:
        raise DatasetError(f"'{root}' shards lack the column(s) {', '.join(sorted(missing))}")
    return ds
