"""Read a benchmark from the hub (through `datasets`) or from a local parquet/TSV/JSONL file or folder.

The format is detected from the file ending; the columns are checked against the benchmark's schema
before anything runs. Each source reports a content hash so a run folder records exactly which data
it saw. Images stay raw (bytes, a path, or base64 text) until the eval writes them out, so one broken
image is one failed sample, not a failed load.
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

from evals.benchmarks import Benchmark, SchemaError

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


def load_rows(bench: Benchmark, path: str | None, split: str | None) -> LoadedRows:
    """All raw rows of one benchmark source, schema-checked."""
    loaded = _load_local(Path(path), split, bench) if path else _load_hub(bench, split or bench.default_split)
    if not loaded.rows:
        raise SourceError(f"{loaded.source} holds no rows for {bench.name}")
    bench.check_columns(list(loaded.rows[0].keys()), loaded.source)
    ids = [str(r.get("index", r.get("question_id"))) for r in loaded.rows]
    dupes = sorted({i for i in ids if ids.count(i) > 1}) if len(set(ids)) != len(ids) else []
    if dupes:
        raise SourceError(f"{loaded.source} has duplicate ids in column 'index': {', '.join(dupes[:5])}")
    return loaded


def _load_local(path: Path, split: str | None, bench: Benchmark | None = None) -> LoadedRows:
    if not path.exists():
        raise SourceError(f"data path '{path}' does not exist")
    if bench is not None and bench.name == "vstar" and _release_folders(path):
        return _load_vstar_release(path)
    files = _data_files(path, split)
    if not files:
        raise SourceError(f"no .parquet, .tsv or .jsonl files in '{path}'")
    rows: list[dict] = []
    digest = hashlib.sha256()
    for file in files:
        digest.update(file.read_bytes())
        try:
            rows.extend(_read_file(file))
        except SchemaError:
            raise
        except Exception as exc:  # noqa: BLE001 - every reader error becomes one clear message
            raise SourceError(f"could not read '{file}' as {FORMATS[file.suffix.lower()]}: {exc}") from None
    kind = FORMATS[files[0].suffix.lower()]
    return LoadedRows(rows, str(path), kind, "sha256:" + digest.hexdigest(), files[0].parent, [str(f) for f in files])


VSTAR_FOLDERS = ("direct_attributes", "relative_position")
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp", ".bmp", ".gif")


def _release_folders(path: Path) -> list[Path]:
    """The V* release's category folders (images with a JSON annotation each), if `path` is that layout."""
    if not path.is_dir():
        return []
    return [path / name for name in VSTAR_FOLDERS if (path / name).is_dir() and any((path / name).glob("*.json"))]


def _load_vstar_release(path: Path) -> LoadedRows:
    """One row per annotated image: id `folder/stem`, the annotation's question and options (correct first)."""
    rows: list[dict] = []
    digest = hashlib.sha256()
    files: list[str] = []
    for folder in _release_folders(path):
        for annotation in sorted(folder.glob("*.json")):
            image = next((annotation.with_suffix(s) for s in IMAGE_SUFFIXES if annotation.with_suffix(s).exists()),
                         None)  # fmt: skip
            digest.update(annotation.read_bytes())
            try:
                data = json.loads(annotation.read_text(encoding="utf-8"))
            except (json.JSONDecodeError, UnicodeDecodeError) as exc:
                data = {"error": str(exc)}
            rows.append({"index": f"{folder.name}/{annotation.stem}", "question": data.get("question", ""),
                         "options": data.get("options"), "category": folder.name,
                         "image": str(image.relative_to(path)) if image else None,
                         "target_object": data.get("target_object"), "bbox": data.get("bbox")})
            files.append(str(annotation))
    return LoadedRows(rows, str(path), "vstar-release", "sha256:" + digest.hexdigest(), path, files)


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


def _load_hub(bench: Benchmark, split: str) -> LoadedRows:
    try:
        import datasets
    except ImportError:
        raise SourceError("loading from the hub needs the 'datasets' package: pip install datasets") from None
    if split not in bench.splits:
        raise SourceError(f"{bench.name} has splits {', '.join(bench.splits)}, not '{split}'")
    try:
        ds = datasets.load_dataset(bench.hub_id, bench.config, split=split)
    except Exception as exc:  # noqa: BLE001
        raise SourceError(
            f"could not load {bench.hub_id} ({split}) from the hub: {exc}. Without hub access, download it "
            f"elsewhere (hf download {bench.hub_id} --repo-type dataset --local-dir ./data/{bench.name}) and pass "
            f"--bench {bench.name}=./data/{bench.name}"
        ) from None
    if "image" in ds.column_names:
        ds = ds.cast_column("image", datasets.Image(decode=False))
    return LoadedRows(list(ds), f"hub:{bench.hub_id}:{split}", "hub", "fingerprint:" + ds._fingerprint)


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
