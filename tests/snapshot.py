"""A minimal snapshot helper: compare text to tests/snapshots/NAME; UPDATE_SNAPSHOTS=1 rewrites them."""

from __future__ import annotations

import os
from pathlib import Path

SNAPSHOTS = Path(__file__).parent / "snapshots"


def assert_snapshot(name: str, text: str) -> None:
    path = SNAPSHOTS / name
    if os.environ.get("UPDATE_SNAPSHOTS") == "1":
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        return
    assert path.exists(), f"no snapshot {path}; run with UPDATE_SNAPSHOTS=1 and review the file"
    assert text == path.read_text(), f"{name} drifted from its snapshot; if intended, rerun with UPDATE_SNAPSHOTS=1"
