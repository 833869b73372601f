"""Arize Phoenix's server for the OpenTelemetry tests: this environment's, or the one XTHINK_TEST_PHOENIX names.

vLLM 0.33 pins an older FastAPI than Phoenix's server needs, so .ci/run's vLLM environment installs only Phoenix's
client (pyproject.toml: test-core) and points XTHINK_TEST_PHOENIX at the first environment's `phoenix`. The
server is a separate process either way; what is tested (our exporter and spans) runs in this environment.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

PHOENIX_ENV = "XTHINK_TEST_PHOENIX"


def phoenix_executable() -> Path:
    """The `phoenix` command to start; an AssertionError saying what to install or set where there is none."""
    path = Path(os.environ.get(PHOENIX_ENV) or Path(sys.executable).with_name("phoenix"))
    assert path.exists(), f"no Phoenix server at {path}: install the [test] extra, or set {PHOENIX_ENV} to one"
    return path


def path_with_phoenix(path_var: str) -> str:
    """PATH with Phoenix's folder last: `phoenix` resolves there, every other command stays this environment's."""
    return f"{path_var}{os.pathsep}{phoenix_executable().parent}"
