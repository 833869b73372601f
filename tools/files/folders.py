"""Folders and files a user names as output: we write into them only when they are new, empty, or ours.

A command that writes into `--out DIR` (an eval run, a report, VET data, a trained model, a conversion) must
never delete or overwrite what it did not write: `--out ~` or `--out .` by mistake must cost nothing. Each
kind of folder has a marker, the file its command writes first (`run.json` for an eval run), or a fixed set of
names it writes; a folder that holds something else is refused before anything in it is touched, and a
restart removes only the names that command writes.
"""

from __future__ import annotations

import hashlib

from collections.abc import Callable, Iterable
from fnmatch import fnmatchcase
from pathlib import Path


class NotOurFolderError(ValueError):
    """The output path holds files another program or person wrote; the message says what to pass instead."""


def claim_folder(root: Path, option: str, what: str, marker: str | None = None,
                 own_names: Iterable[str] = ()) -> None:
    """Refuse `root` unless it is missing, empty, holds `marker`, or holds only entries named in `own_names`
    (names or glob patterns such as `*_samples_*.jsonl`)."""
    root = Path(root)
    if root.exists() and not root.is_dir():
        raise NotOurFolderError(f"{option} '{root}' is a file; pass a folder (it is created if missing)")
    if not root.is_dir() or (marker is not None and (root / marker).exists()):
        return
    patterns = tuple(own_names)
    foreign = sorted(e.name for e in root.iterdir() if not any(fnmatchcase(e.name, p) for p in patterns))
    if foreign:
        because = f"no {marker}" if marker else "files this command does not write"
        raise NotOurFolderError(
            f"{option} '{root}' is not empty and is not {what} ({because}, e.g. '{foreign[0]}'); nothing in it "
            "was touched: choose a new or empty folder"
        )


def claim_file(path: Path, option: str, what: str, is_ours: Callable[[Path], bool]) -> None:
    """Refuse to overwrite an existing file unless `is_ours` recognises it as one we wrote before."""
    path = Path(path)
    if path.is_dir():
        raise NotOurFolderError(f"{option} '{path}' is a folder; pass the file to write {what} to")
    if path.exists() and not is_ours(path):
        raise NotOurFolderError(
            f"{option} '{path}' exists and is not {what} written by xthink; nothing was overwritten: "
            "choose a new file name or remove it yourself"
        )


def starts_with(path: Path, prefix: bytes) -> bool:
    """Whether a file begins with `prefix` (reads only that many bytes; an unreadable file is not ours)."""
    try:
        with Path(path).open("rb") as handle:
            return handle.read(len(prefix)) == prefix
    except OSError:
        return False


class RunFolderError(ValueError):
    """The output folder holds a different run, or is unusable; the message says what to pass."""


def safe_name(sample_id: str) -> str:
    """A file name for a sample id from a data file: never a path, unique per id (hash prefix)."""
    kept = "".join(c for c in sample_id if c.isalnum() or c in "-_")[:40]
    return hashlib.sha1(sample_id.encode()).hexdigest()[:8] + "_" + kept
