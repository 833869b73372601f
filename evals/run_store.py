"""The run folder: an append-only JSONL of finished samples, the run's manifest, traces and images.

Each finished sample is one line, written and fsynced before its sample ends, so a crash or SIGKILL loses
at most the samples in flight; samples finishing together share one fsync (tools/files/records.py:
GroupAppender) rather than waiting for each other's. On reopening, a torn last line (killed mid-write) is cut
off, and a sample already done is never written again: a rerun of the same command completes the run exactly
once.

A record is identified by (regime, benchmark, sample, settings hash). A sample whose record is an error
is run again on the next run (a server that was down must not poison the run) unless `retry_errors` is
off; its newer record then supersedes the error. Records of other settings (a `--resume` with new
settings) stay in the file and are reported apart.
"""

from __future__ import annotations

import json
import shutil
import threading
from pathlib import Path

from evals.records import SampleRecord
from tools.files.folders import NotOurFolderError, RunFolderError, claim_folder
from tools.files.records import GroupAppender, read_lines

RECORDS = "records.jsonl"
MANIFEST = "run.json"
RUN_NAMES = (RECORDS, MANIFEST, "traces", "images", "report")  # everything a run writes at its top level


class RunStore:
    def __init__(self, root: Path):
        self.root = Path(root)
        self._lock = threading.Lock()
        self._done: dict[str, SampleRecord] = {}
        self._writing: set[str] = set()  # records being written (claimed, not yet on disk)
        self._appender = GroupAppender(self.records_path)
        self.retry_errors = True
        self._resolved_root: Path | None = None
        self._trace_folders: set[Path] = set()  # checked and created (see _trace_folder)

    @property
    def records_path(self) -> Path:
        return self.root / RECORDS

    @staticmethod
    def check(root: Path) -> None:
        """Refuse, before any work, an output folder that is neither new, empty, nor a run folder."""
        try:
            claim_folder(Path(root), "--out", "a run folder", marker=MANIFEST)  # run.json: written first
        except NotOurFolderError as exc:
            raise RunFolderError(str(exc)) from None

    def open(self, manifest: dict, restart: bool = False, resume: bool = False) -> None:
        """Create or reopen the folder; refuse a folder that holds a run with other settings, or that is not
        a run folder at all (not empty, no run.json): `--restart` then removes only what a run writes."""
        self.check(self.root)
        if restart and self.root.exists():
            for name in RUN_NAMES:
                target = self.root / name
                shutil.rmtree(target) if target.is_dir() else target.unlink(missing_ok=True)
        self.root.mkdir(parents=True, exist_ok=True)
        existing = self.read_manifest()
        if existing is not None and existing.get("identity") != manifest.get("identity") and not resume:
            changed = sorted(
                k for k in set(existing.get("identity", {})) | set(manifest.get("identity", {}))
                if existing.get("identity", {}).get(k) != manifest.get("identity", {}).get(k)
            )  # fmt: skip
            raise RunFolderError(
                f"'{self.root}' holds a run with different settings ({', '.join(changed)}); "
                "pass --restart to start over there, --resume to continue it with the new settings, "
                "or choose another --out"
            )
        if existing is not None and resume and existing.get("identity") != manifest.get("identity"):
            manifest = {**manifest, "previous": existing.get("previous", []) + [existing.get("identity")]}
        (self.root / MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=True))
        self._done = {r.store_key: r for r in self.load()}

    def read_manifest(self) -> dict | None:
        path = self.root / MANIFEST
        return json.loads(path.read_text()) if path.exists() else None

    def load(self) -> list[SampleRecord]:
        """Every complete record, first occurrence of a key only; a torn last line is cut off."""
        return read_records(self.root, repair=True)

    def is_done(self, store_key: str) -> bool:
        record = self._done.get(store_key)
        return record is not None and (record.scored or not self.retry_errors or not record.retryable)

    def append(self, record: SampleRecord) -> bool:
        """Write one record durably; returns False (and writes nothing) if that sample is already done."""
        key = record.store_key
        with self._lock:
            if self.is_done(key) or key in self._writing:
                return False
            self._writing.add(key)
        try:
            self._appender.append(record.model_dump_json())
            with self._lock:
                self._done[key] = record
        finally:
            with self._lock:
                self._writing.discard(key)
        return True

    def write_trace(self, relative: str, text: str) -> None:
        """Write one sample's trace whole (a reader never sees half of one), inside the run folder."""
        path = self.root / relative
        if path.name in ("", ".", "..") or not self._trace_folder(path.parent):
            raise RunFolderError(f"refusing to write '{relative}' outside the run folder '{self.root}'")
        tmp = path.with_suffix(".tmp")
        tmp.write_text(text)
        tmp.replace(path)

    def _trace_folder(self, folder: Path) -> bool:
        """Whether `folder` is inside the run folder, creating it; checked once per folder (one per regime and
        benchmark). Why once: resolving a path is a system call per component, and under an eval's 16 threads
        each call then waits for the interpreter lock again (profiled: a fifth of the sample threads' time)."""
        if folder in self._trace_folders:
            return True
        if self._resolved_root is None:
            self._resolved_root = self.root.resolve()
        if not folder.resolve().is_relative_to(self._resolved_root):
            return False
        folder.mkdir(parents=True, exist_ok=True)
        self._trace_folders.add(folder)
        return True


def read_records(root: Path, repair: bool = False) -> list[SampleRecord]:
    seen: dict[str, SampleRecord] = {}
    for line in read_lines(Path(root) / RECORDS, repair):
        record = SampleRecord.model_validate_json(line)
        earlier = seen.get(record.store_key)
        if earlier is None or not earlier.scored:  # a retried error gives way to the newer record
            seen[record.store_key] = record
    return list(seen.values())
