"""VET sources: LLaVA-format conversation data (a JSON list, JSONL, parquet, or an HF dataset id) as items.

An item is an image plus its question-answer pairs, read from `{"id", "image", "conversations": [{"from":
"human", "value": "<image>\\nQ"}, {"from": "gpt", "value": "A"}, ...]}`. Image paths are relative to the
file. Reading never fails on one bad row: an item without an image or a human turn comes back with its
`error` set, so the run records it and goes on, as `xthink eval` does with a broken benchmark row.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from itertools import pairwise
from pathlib import Path

from tools.files.data_files import LoadedRows, SourceError, image_bytes, load_files

IMAGE_MARKERS = ("<image>\n", "\n<image>", "<image>")


@dataclass(frozen=True)
class QA:
    question: str
    answer: str


@dataclass(frozen=True)
class SourceItem:
    """One source conversation; `image` stays raw (a path, parquet {bytes, path}, or bytes) until used."""

    id: str
    image: object
    qas: tuple[QA, ...]
    error: str = ""

    def image_data(self, base_dir: Path | None) -> bytes:
        """The encoded image, or ValueError saying why there is none."""
        return image_bytes(self.image, base_dir)


@dataclass
class VetSource:
    items: list[SourceItem]
    source: str
    content_hash: str
    base_dir: Path | None


def load_source(source: str, limit: int | None = None) -> VetSource:
    """Every item of a local file or folder, or of an HF dataset (split `train`); SourceError if unusable."""
    path = Path(source).expanduser()
    looks_local = path.exists() or source.startswith(("/", "./", "../", "~")) or path.suffix in (".json", ".jsonl")
    loaded = load_files(path, None) if looks_local else _load_hub(source)
    if not loaded.rows:
        raise SourceError(f"{loaded.source} holds no items")
    if not any("conversations" in row for row in loaded.rows[:100]):
        raise SourceError(
            f"{loaded.source} is not in LLaVA conversation format: its rows have no 'conversations' field "
            f"(fields: {', '.join(sorted(loaded.rows[0])[:8])})"
        )
    rows = loaded.rows[:limit] if limit else loaded.rows
    items = [to_item(row, i) for i, row in enumerate(rows)]
    ids = [item.id for item in items]
    if len(set(ids)) != len(ids):
        dupes = sorted({i for i in ids if ids.count(i) > 1})
        raise SourceError(f"{loaded.source} has duplicate ids: {', '.join(dupes[:5])}; ids must be unique")
    return VetSource(items, loaded.source, loaded.content_hash, loaded.base_dir)


def to_item(row: dict, index: int) -> SourceItem:
    """A row as an item; what is wrong with it goes in `error`, never an exception."""
    item_id = str(row.get("id") if row.get("id") is not None else index)
    turns = row.get("conversations")
    if isinstance(turns, str):
        try:
            turns = json.loads(turns)
        except json.JSONDecodeError:
            turns = None
    if not isinstance(turns, list):
        return SourceItem(item_id, row.get("image"), (), "no conversations list")
    qas = pair_turns(turns)
    error = "" if qas else "no human turn with a gpt answer"
    if not error and not row.get("image"):
        error = "no image"
    return SourceItem(item_id, row.get("image"), qas, error)


def pair_turns(turns: list) -> tuple[QA, ...]:
    """Each human turn with the gpt turn that follows it; the `<image>` marker removed from questions."""
    qas = []
    for turn, reply in pairwise(turns):
        if not (isinstance(turn, dict) and isinstance(reply, dict)):
            continue
        if turn.get("from") == "human" and reply.get("from") == "gpt":
            question = str(turn.get("value", ""))
            for marker in IMAGE_MARKERS:
                question = question.replace(marker, "")
            if question.strip():
                qas.append(QA(question.strip(), str(reply.get("value", "")).strip()))
    return tuple(qas)


def _load_hub(dataset_id: str) -> LoadedRows:
    try:
        import datasets

        ds = datasets.load_dataset(dataset_id, split="train")
    except Exception as exc:  # noqa: BLE001 - any loader failure becomes one line naming the source
        raise SourceError(
            f"could not load '{dataset_id}' as a local file or an HF dataset ({type(exc).__name__}: "
            f"{str(exc)[:200]}); pass a LLaVA-format .json/.jsonl/.parquet file or folder, or a dataset id"
        ) from None
    if "image" in ds.column_names and isinstance(ds.features["image"], datasets.Image):
        ds = ds.cast_column("image", datasets.Image(decode=False))
    return LoadedRows(list(ds), f"hub:{dataset_id}", "hub", "fingerprint:" + ds._fingerprint)
