"""Read a benchmark from the hub (through `datasets`), from local data files, or from the V* release folder.

The file reading itself is tools/files/data_files.py (shared with VET); here the columns are checked
against the benchmark's schema before anything runs, and ids must be unique.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from evals.benchmarks import Benchmark
from tools.files.data_files import LoadedRows, SourceError, load_files

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


def _load_local(path: Path, split: str | None, bench: Benchmark) -> LoadedRows:
    if bench.name == "vstar" and path.exists() and _release_folders(path):
        return _load_vstar_release(path)
    return load_files(path, split)


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
