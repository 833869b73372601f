"""Keeping the content store within its bound: which files go (too old first, then least recently used), how
one is removed safely, and when a process that writes to the store should prune.

Each use of a file sets its mtime, so mtime means "last used"; a prune never removes a file used within the
grace period, nor one used since the scan that chose it. Only names the store writes are ever removed:
`<64 hex>.<ext>` regular files and its own stale `xthink-*.part` temporaries; anything else in the folder
(and any symlink) is left alone. A process counts its own writes between scans and rescans every RESCAN_S
seconds, as other processes may write to the same store.
"""

from __future__ import annotations

import os
import re
import stat
import threading
from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from tools.images.store import StoreBound

DAY = 24 * 3600
PART_FILE = re.compile(r"xthink-[a-z0-9_]{8}\.part")
PART_MAX_AGE_S = DAY  # a temporary this old belongs to a process that died mid-write
RESCAN_S = 300  # a store shared by processes is rescanned this often (each counts only its own writes)
STUCK_RESCAN_S = 10  # over the bound with nothing evictable (all in the grace period): rescan at most this often
MAX_TALLIES = 16


@dataclass(frozen=True)
class StoreFile:
    path: Path
    size: int
    used: float  # mtime: the last time the store wrote or used it


@dataclass(frozen=True)
class PruneReport:
    removed: int = 0
    freed: int = 0
    kept: int = 0
    kept_bytes: int = 0
    failed: int = 0  # due to go but not removable (a read-only store): kept, counted here


@dataclass
class _Tally:
    """What one process knows of a store's size between scans."""

    bytes: int
    scanned: float
    stuck: bool = False


_TALLIES: OrderedDict[str, _Tally] = OrderedDict()
_TALLY_LOCK = threading.Lock()


def evict(files: list[StoreFile], bound: StoreBound, now: float) -> PruneReport:
    """Remove from `files` (least recently used first) what is past the bound: too old, then until the size fits."""
    total, removed, freed, failed = sum(f.size for f in files), 0, 0, 0
    for f in files:
        age = now - f.used
        if age < bound.keep_recent_s:
            break  # sorted: everything after was used more recently
        too_old = bound.max_age_s is not None and age > bound.max_age_s
        if not too_old and not (bound.max_bytes is not None and total > bound.max_bytes):
            break
        outcome = remove_unused(f)
        if outcome:
            total, removed, freed = total - f.size, removed + 1, freed + f.size
        failed += outcome is None
    return PruneReport(removed, freed, len(files) - removed, total, failed)


def own_files(root: Path, pattern: re.Pattern) -> Iterator[tuple[Path, os.stat_result]]:
    """(path, lstat) of regular files directly in the folder whose names match: never symlinks or folders."""
    try:
        entries = list(os.scandir(root))
    except (FileNotFoundError, NotADirectoryError):
        return
    for entry in entries:
        if pattern.fullmatch(entry.name):
            try:
                st = entry.stat(follow_symlinks=False)
            except FileNotFoundError:
                continue
            if stat.S_ISREG(st.st_mode):
                yield Path(entry.path), st


def drop_stale_parts(root: Path, now: float) -> None:
    """Remove the temporaries of writes that never finished (their process died)."""
    for path, st in own_files(root, PART_FILE):
        if now - st.st_mtime > PART_MAX_AGE_S:
            remove_unused(StoreFile(path, st.st_size, st.st_mtime))


def prune_due(key: str, size: int, bound: StoreBound, now: float) -> bool:
    """After a write of `size` bytes: whether this process's tally passed the bound, or a rescan is due."""
    with _TALLY_LOCK:
        tally = _TALLIES.get(key)
        if tally is not None:
            tally.bytes += size
        return tally is None or _due(tally, bound, now)


def record_scan(key: str, kept_bytes: int, bound: StoreBound, now: float) -> None:
    """A prune's result as the tally's new start; a store still over the bound is marked stuck."""
    over = bound.max_bytes is not None and kept_bytes > bound.max_bytes
    with _TALLY_LOCK:
        _TALLIES[key] = _Tally(kept_bytes, now, over)
        _TALLIES.move_to_end(key)
        while len(_TALLIES) > MAX_TALLIES:
            _TALLIES.popitem(last=False)


def _due(tally: _Tally, bound: StoreBound, now: float) -> bool:
    if now - tally.scanned > RESCAN_S:
        return True
    over = bound.max_bytes is not None and tally.bytes > bound.max_bytes
    return over and (not tally.stuck or now - tally.scanned > STUCK_RESCAN_S)


def remove_unused(f: StoreFile) -> bool | None:
    """Unlink unless it was used since the scan (a run touched it meanwhile); None if it cannot be removed."""
    try:
        st = os.lstat(f.path)
        if st.st_mtime != f.used or not stat.S_ISREG(st.st_mode):
            return False
        os.unlink(f.path)
    except FileNotFoundError:
        return False
    except OSError:  # no permission: the store is read-only to this process
        return None
    return True
