"""`xthink vet-data` as a Python API: items -> teacher calls with bounded concurrency -> records -> dataset.

The run folder works like an eval run folder: `records.jsonl` is append-only (one fsynced line per
finished item, tools/files/records.py), so a kill loses at most the items in flight; a rerun of the same command
skips the items that have a pair and retries those that failed. A failure of the teacher itself (a model
that cannot load, a server gone, out of memory) stops the run instead of failing every item in turn.
When the run ends, the parquet shards and the LLaVA JSON are rewritten from all records.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from dataclasses import asdict, dataclass, field
from pathlib import Path

from tools.vet.teacher import (
    DESCRIBE_PROMPT,
    STATEMENTS_PROMPT,
    Teachers,
    VetRecord,
    VetSettings,
    iterative_pair,
    paper_pair,
)
from tools.vet.sources import SourceItem, VetSource
from tools.perception import is_model_failure
from tools.files.folders import NotOurFolderError, RunFolderError, claim_folder, safe_name
from tools.images.pixels import ImageError, ImageStore
from tools.files.records import append_line, read_lines
from tools.vet.dataset import Pair, write_dataset

RECORDS, MANIFEST = "records.jsonl", "manifest.json"
PAIRS_VERSION = "1"


@dataclass
class VetPlan:
    source: VetSource
    out: Path
    teacher: str
    text_teacher: str | None = None
    settings: VetSettings = field(default_factory=VetSettings)
    concurrency: int = 4
    restart: bool = False


@dataclass
class VetSummary:
    total: int
    done_before: int
    ok: int
    failed: int
    shards: list[str]


def check_folder(root: Path) -> None:
    """Refuse, before any work, an output folder that is neither new, empty, nor a VET data folder."""
    try:
        claim_folder(Path(root), "--out", "a VET data folder", marker=MANIFEST)  # written first
    except NotOurFolderError as exc:
        raise RunFolderError(str(exc)) from None


class VetStore:
    """records.jsonl + manifest.json of one data folder; thread-safe appends."""

    def __init__(self, root: Path):
        self.root = Path(root)
        self._lock = threading.Lock()
        self.done: dict[str, VetRecord] = {}

    def open(self, manifest: dict, restart: bool) -> None:
        """Create or reopen the folder; a folder that is neither empty nor a VET data folder is refused."""
        check_folder(self.root)
        path = self.root / MANIFEST
        if restart and self.root.exists():
            (self.root / RECORDS).unlink(missing_ok=True)
            path.unlink(missing_ok=True)
        self.root.mkdir(parents=True, exist_ok=True)
        if path.exists() and json.loads(path.read_text()).get("identity") != manifest["identity"]:
            raise RunFolderError(f"'{self.root}' holds pairs from another source, teacher or settings; pass "
                                 "--restart to start over there, or choose another --out")  # fmt: skip
        path.write_text(json.dumps(manifest, indent=2, sort_keys=True))
        self.done = {r.id: r for r in self.records() if r.ok}

    def records(self) -> list[VetRecord]:
        """The latest record of each item (an error gives way to a later success)."""
        latest: dict[str, VetRecord] = {}
        for line in read_lines(self.root / RECORDS, repair=True):
            record = VetRecord.model_validate_json(line)
            if record.ok or record.id not in latest or not latest[record.id].ok:
                latest[record.id] = record
        return list(latest.values())

    def append(self, record: VetRecord) -> None:
        with self._lock:
            if record.id in self.done:
                return
            append_line(self.root / RECORDS, record.model_dump_json())
            if record.ok:
                self.done[record.id] = record


def manifest(plan: VetPlan) -> dict:
    """What made these pairs; `identity` must match for a rerun to append to the folder."""
    identity = {"source_hash": plan.source.content_hash, "teacher": plan.teacher, "text_teacher": plan.text_teacher,
                "settings": asdict(plan.settings), "pairs_version": PAIRS_VERSION}  # fmt: skip
    return {"identity": identity, "source": plan.source.source, "items": len(plan.source.items),
            "prompts": {"statements": STATEMENTS_PROMPT, "describe": DESCRIBE_PROMPT},
            "concurrency": plan.concurrency}  # fmt: skip


def run_vet_data(plan: VetPlan, teachers: Teachers, on_item: Callable[[VetRecord], None] = lambda r: None,
                 on_start: Callable[[int, int], None] = lambda done, total: None) -> VetSummary:  # fmt: skip
    """Every item without a pair through the teacher; `on_start(done, total)` then `on_item(record)` report."""
    store = VetStore(plan.out)
    store.open(manifest(plan), plan.restart)
    todo = [item for item in plan.source.items if item.id not in store.done]
    before = len(plan.source.items) - len(todo)
    on_start(before, len(plan.source.items))
    with ThreadPoolExecutor(max_workers=plan.concurrency) as pool:
        pending: set = set()
        for item in todo:
            if len(pending) >= 2 * plan.concurrency:
                finished, pending = wait(pending, return_when=FIRST_COMPLETED)
                _collect(finished, store, on_item)
            pending.add(pool.submit(make_record, item, plan, teachers))
        _collect(wait(pending).done, store, on_item)
    return finish(plan, store, before)


def _collect(finished, store: VetStore, on_item) -> None:
    for future in finished:
        record = future.result()  # a model failure re-raises here and ends the run
        store.append(record)
        on_item(record)


def finish(plan: VetPlan, store: VetStore, before: int) -> VetSummary:
    records = store.records()
    ok = [r for r in records if r.ok]
    pairs = [Pair(r.id, r.image, r.instruction, r.target, r.style) for r in ok]
    shards = write_dataset(plan.out, pairs)
    return VetSummary(len(plan.source.items), before, len(ok), len(records) - len(ok), [str(s) for s in shards])


def make_record(item: SourceItem, plan: VetPlan, teachers: Teachers) -> VetRecord:
    """One item through the teacher; anything wrong with the item becomes its error record."""
    started = time.perf_counter()
    base = {"id": item.id, "style": plan.settings.style, "questions": [qa.question for qa in item.qas]}
    if item.error:
        return VetRecord(**base, ok=False, error=item.error)
    try:
        store = ImageStore()
        store.add(_image_file(item, plan), image_id=item.id)
        build = paper_pair if plan.settings.style == "paper" else iterative_pair
        fields = build(item, store, teachers, plan.settings)
    except Exception as exc:  # one item's failure is its record, the teacher's ends the run
        if is_model_failure(exc):
            raise
        return VetRecord(**base, ok=False, error=" ".join(f"{type(exc).__name__}: {exc}".split())[:300])
    image = _save_view(plan.out, item.id, fields.pop("view"))
    return VetRecord(**base, ok=True, image=image, seconds=round(time.perf_counter() - started, 3), **fields)


def _image_file(item: SourceItem, plan: VetPlan) -> Path:
    """The item's image as a file ImageStore can validate: a path as given, bytes written once to a cache."""
    value, base = item.image, plan.source.base_dir
    if isinstance(value, dict) and not value.get("bytes"):
        value = value.get("path")
    if isinstance(value, str) and len(value) < 4096:
        path = Path(value) if Path(value).is_absolute() or base is None else base / value
        if path.is_file() or not _maybe_base64(value):
            return path  # ImageStore.add says what is wrong with a missing or broken file
    try:
        data = item.image_data(base)
    except ValueError as exc:
        raise ImageError(f"item '{item.id}': {exc}") from None
    path = plan.out / "source_images" / safe_name(item.id)
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_bytes(data)
        tmp.replace(path)
    return path


def _maybe_base64(text: str) -> bool:
    return len(text) > 64 and "/" not in text[:8] and "." not in text[-6:]


def _save_view(root: Path, item_id: str, image) -> str:
    """Write the training image (what the perceiver sees) as PNG; its path relative to the folder."""
    relative = f"images/{safe_name(item_id)}.png"
    path = root / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp.png")
    image.save(tmp, "PNG")
    tmp.replace(path)
    return relative
