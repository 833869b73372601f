"""Rows from local data files (parquet, TSV, JSONL, a JSON list) and the image bytes a row holds.

Benchmarks (evals/sources.py) and VET sources (tools/vet/sources.py) read their files here. Each load
reports a content hash so a run folder records exactly which data it saw. Images stay raw (bytes, a path,
or base64 text) until they are used, so one broken image is one failed item, not a failed load.
"""

from __future__ import annotations

import base64
import binascii
import csv
import hashlib
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path

FORMATS = {".parquet": "parquet", ".tsv": "tsv", ".jsonl": "jsonl", ".json": "jsonl"}


class SourceError(ValueError):
    """A data source is missing, unreadable, empty or inconsistent; the message says which and why."""


@dataclass
class LoadedRows:
    rows: list[dict]
    source: str
    kind: str
    content_hash: str
    base_dir: Path | None = None
    files: list[str] = field(default_factory=list)


def load_files(path: Path, split: str | None) -> LoadedRows:
    """Every row of a data file, or of the data files in a folder (those naming `split`, if any do)."""
    if not path.exists():
        raise SourceError(f"data path '{path}' does not exist")
    files = _data_files(path, split)
    if not files:
        raise SourceError(f"no .parquet, .tsv or .jsonl files in '{path}'")
    rows: list[dict] = []
    digest = hashlib.sha256()
    for file in files:
        digest.update(file.read_bytes())
        try:
            rows.extend(_read_file(file))
        except Exception as exc:  # noqa: BLE001 - every reader error becomes one clear message
            raise SourceError(f"could not read '{file}' as {FORMATS[file.suffix.lower()]}: {exc}") from None
    kind = FORMATS[files[0].suffix.lower()]
    return LoadedRows(rows, str(path), kind, "sha256:" + digest.hexdigest(), files[0].parent, [str(f) for f in files])


def _data_files(path: Path, split: str | None) -> list[Path]:
    if path.is_file():
        if path.suffix.lower() not in FORMATS:
            raise SourceError(f"'{path}' is not a .parquet, .tsv or .jsonl file")
        return [path]
    files = sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in FORMATS)
    if split:
        matching = [p for p in files if split in p.name or split in p.parent.name]
        files = matching or files
    return files


def _read_file(file: Path) -> list[dict]:
    kind = FORMATS[file.suffix.lower()]
    if kind == "parquet":
        import pyarrow.parquet as pq

        return pq.read_table(file).to_pylist()
    if kind == "tsv":
        csv.field_size_limit(sys.maxsize)  # base64 images are long fields
        with file.open(newline="", encoding="utf-8") as handle:
            return list(csv.DictReader(handle, delimiter="\t"))
    with file.open(encoding="utf-8") as handle:
        text = handle.read()
    if file.suffix.lower() == ".json" and text.lstrip().startswith("["):
        return json.loads(text)
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def image_bytes(value, base_dir: Path | None) -> bytes:
    """The encoded image of a row: parquet {bytes, path}, raw bytes, a file path, or base64 text."""
    if isinstance(value, dict):
        if value.get("bytes"):
            return bytes(value["bytes"])
        value = value.get("path")
    if isinstance(value, (bytes, bytearray)):
        return bytes(value)
    if not isinstance(value, str) or not value.strip():
        raise ValueError("the row has no image")
    candidate = Path(value) if Path(value).is_absolute() or base_dir is None else base_dir / value
    if len(value) < 4096 and candidate.is_file():
        return candidate.read_bytes()
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("the image is neither a readable file path nor valid base64") from None
