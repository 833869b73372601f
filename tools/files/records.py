"""Append-only JSONL files that survive a kill: one fsynced line per record, a torn last line cut off.

Shared by the eval run folder (evals/run_store.py) and the VET data folder (tools/vet/run.py): both promise
that a SIGKILL loses at most the lines in flight and that a rerun finds every finished line intact.
"""

from __future__ import annotations

import os
from pathlib import Path


def append_line(path: Path, line: str) -> None:
    """Write one line and force it to disk before returning (the caller holds any lock it needs)."""
    with Path(path).open("a", encoding="utf-8") as handle:
        handle.write(line + "\n")
        handle.flush()
        os.fsync(handle.fileno())


def read_lines(path: Path, repair: bool = False) -> list[str]:
    """The complete, non-empty lines of a file; a last line without its newline (a write cut short by a
    kill) is dropped, and with `repair` also cut off the file so the next append starts on a fresh line."""
    path = Path(path)
    if not path.exists():
        return []
    data = path.read_bytes()
    if data and not data.endswith(b"\n"):
        cut = data.rfind(b"\n") + 1
        if repair:
            with path.open("r+b") as handle:
                handle.truncate(cut)
        data = data[:cut]
    return [line for line in data.decode("utf-8").splitlines() if line.strip()]
