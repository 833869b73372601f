"""One backend object per model, per process: every run, thread and server request shares it.

Sharing the backend (not only its weights) is what lets concurrent runs meet in one batch and reuse each
other's KV caches: the engine, its batcher and caches live on the backend object. Creating a backend is
cheap; weights load on first use (tools/backends/loading.py keeps them once per process too).
"""

from __future__ import annotations

import os

from tools.backends.base import Perceiver, Reasoner
from tools.backends.factory import make_perceiver, make_reasoner
from tools.backends.loading import OncePerKey, Placement
from tools.backends.options import EngineOptions

_BACKENDS = OncePerKey()  # per-key locks: creating one backend (an import, a vLLM engine) blocks no other


def _shared(role: str, model: str, placement: Placement, engine: EngineOptions):
    make = make_reasoner if role == "reasoner" else make_perceiver
    return _BACKENDS.get((role, model, placement, engine), lambda: make(model, placement, engine))


def shared_reasoner(model: str, placement: Placement = Placement(), engine: EngineOptions = EngineOptions()) -> Reasoner:
    return _shared("reasoner", model, placement, engine)


def shared_perceiver(
    model: str, placement: Placement = Placement(), engine: EngineOptions = EngineOptions()
) -> Perceiver:
    return _shared("perceiver", model, placement, engine)


def env_placement(device: str | None = None) -> Placement:
    """The placement a server uses: the given device, else XTHINK_DEVICE, else auto."""
    return Placement(device=device or os.environ.get("XTHINK_DEVICE") or "auto")
