"""Append-only JSONL files that survive a kill: one fsynced line per record, a torn last line cut off.

Shared by the eval run folder (evals/run_store.py) and the VET data folder (tools/vet/run.py): both promise
that a SIGKILL loses at most the lines in flight and that a rerun finds every finished line intact.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path


def append_line(path: Path, line: str) -> None:
    """Write one line and force it to disk before returning (the caller holds any lock it needs)."""
    append_lines(path, [line])


def append_lines(path: Path, lines: list[str]) -> None:
    """Write lines and force them to disk, with one fsync."""
    with Path(path).open("a", encoding="utf-8") as handle:
        handle.write("".join(line + "\n" for line in lines))
        handle.flush()
        os.fsync(handle.fileno())


class GroupAppender:
    """`append_line` for many threads at once, one fsync per burst instead of one per line.

    Why: an eval's concurrent samples finish together (they leave the same model batch), and with one fsync
    per line under one lock, each waited for the others' disk writes before it could start its next sample.
    Here a thread's line joins whatever is queued; one thread writes and fsyncs the queue while the others
    wait for it, and every `append` still returns only once its line is on disk. When a write fails, every
    thread whose line was in it gets the error.
    """

    def __init__(self, path: Path):
        self.path = Path(path)
        self._queue_lock = threading.Lock()  # the queue and its counters
        self._write_lock = threading.Lock()  # one writer at a time
        self._queued: list[str] = []
        self._last = 0  # number of the last line queued (lines are numbered from 1, in queue order)
        self._taken = 0  # every line up to this number was written, or failed
        # failed writes not yet seen by all their lines' threads: [first, last line, error, threads still to see it]
        self._failed: list[list] = []

    def append(self, line: str) -> None:
        with self._queue_lock:
            self._queued.append(line)
            self._last += 1
            mine = self._last
        with self._write_lock:
            if mine > self._taken:  # not yet taken by an earlier writer: write the queue, this line with it
                with self._queue_lock:
                    lines, self._queued, first, self._taken = self._queued, [], self._taken + 1, self._last
                try:
                    append_lines(self.path, lines)
                except BaseException as exc:
                    self._failed.append([first, self._taken, exc, self._taken - first + 1])
            error = self._failure_of(mine)
        if error is not None:
            raise error

    def _failure_of(self, line: int) -> BaseException | None:
        """The error of the failed write that held `line`, if any; an entry goes once each of its lines saw it
        (the caller holds the write lock), so a file that keeps failing cannot grow this list."""
        for entry in self._failed:
            if entry[0] <= line <= entry[1]:
                entry[3] -= 1
                if entry[3] == 0:
                    self._failed.remove(entry)
                return entry[2]
        return None


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
