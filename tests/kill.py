"""Start a CLI run as a subprocess and SIGKILL it once it has written some work: the resume tests' first half."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Callable

ENV = {**os.environ, "HF_HUB_OFFLINE": "1"}


def kill_when(cmd: list[str], ready: Callable[[], bool], timeout: float = 240, settle: float = 0.0) -> None:
    """Run `cmd`, wait until `ready()` (or the timeout), wait `settle` seconds more, then kill -9 it."""
    proc = subprocess.Popen(cmd, env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + timeout
    while time.time() < deadline and not ready():
        time.sleep(0.05)
    time.sleep(settle)
    proc.send_signal(signal.SIGKILL)
    proc.wait()


def line_count(path) -> int:
    return path.read_text().count("\n") if path.exists() else 0
