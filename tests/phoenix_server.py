"""Arize Phoenix's server, where this environment has one: the vLLM environment of .ci/run leaves it out (vLLM pins
an older FastAPI than Phoenix needs; pyproject.toml's test-core says more), and the tests that need it skip there."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

PHOENIX = Path(sys.executable).with_name("phoenix")


def skip_without_phoenix() -> None:
    if not PHOENIX.exists():
        pytest.skip("Arize Phoenix is not installed (the [test-core] extra leaves it out: vLLM pins an older FastAPI)")
