"""Load transformers models by hub id or local folder, once per process, with errors a user can act on.

The loading calls are the ordinary `from_pretrained` ones, so the tiny test models and real checkpoints
go through the same path. Failures are translated into ModelLoadError naming the model, whether the hub
was reachable, and how to pass a local folder instead.
"""

from __future__ import annotations

import logging
import os
import threading
from dataclasses import dataclass
from typing import Any, Callable

from tools.backends.spec import ModelSpec

log = logging.getLogger(__name__)

_CACHE: dict[tuple, Any] = {}

LOCAL_HINT = (
    "To use a model without the hub, download it on a machine that has access "
    "(`hf download {name} --local-dir ./{short}`) and pass that folder instead."
)


class ModelLoadError(RuntimeError):
    """A model could not be loaded; the message says why and what to do."""


@dataclass(frozen=True)
class Placement:
    """Where a model runs: 'auto' picks CUDA with bfloat16 when a GPU is present, else CPU with float32."""

    device: str = "auto"
    dtype: str = "auto"

    def resolve(self) -> tuple[str, Any]:
        import torch

        device = self.device
        if device == "auto":
            device = "cuda" if torch.cuda.is_available() else "cpu"
        if self.dtype != "auto":
            return device, getattr(torch, self.dtype)
        return device, torch.bfloat16 if device.startswith("cuda") else torch.float32


class OncePerKey:
    """Values built once per key, shared by every thread.

    Each build holds only its own key's lock, and a value already built is read without any lock: loading
    one model (minutes, for a large one) never stalls calls on the models already loaded, and two threads
    asking for the same model wait for one load. A build that raises leaves nothing behind, so the next
    call tries again.
    """

    def __init__(self, values: dict | None = None):
        self.values: dict = {} if values is None else values
        self._locks: dict = {}
        self._guard = threading.Lock()  # held only to find a key's lock, never during a build

    def get(self, key, build: Callable[[], Any]) -> Any:
        try:
            return self.values[key]
        except KeyError:
            pass
        with self._guard:
            lock = self._locks.setdefault(key, threading.RLock())
        with lock:  # re-entrant: a build may ask for its own key's other parts
            if key not in self.values:
                self.values[key] = build()
            return self.values[key]


_LOADED = OncePerKey(_CACHE)
_builds = 0  # how many values `cached` has built: tools/long_lived.py freezes again only after a new one
_builds_lock = threading.Lock()


def cached(key: tuple, build: Callable[[], Any]) -> Any:
    """Build a loaded model once per process and key; later calls reuse it (OncePerKey: per-key locks)."""
    return _LOADED.get(key, lambda: _counted(build))


def _counted(build: Callable[[], Any]) -> Any:
    global _builds
    value = build()
    with _builds_lock:
        _builds += 1
    return value


def builds() -> int:
    """How many values `cached` has built in this process so far (models, engines, tokenizers)."""
    return _builds


def cached_where_placed(key: tuple, placement: Placement, build: Callable[[str, Any], Any]) -> Any:
    """`cached` for what is built per device and dtype: `build(device, dtype)` runs once per key and placement."""
    device, dtype = placement.resolve()
    return cached((*key, device, str(dtype)), lambda: build(device, dtype))


def hub_offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in {"1", "true", "yes", "on"}


def hub_failure(exc: BaseException) -> bool:
    """Whether the hub refused or lacked the model somewhere in `exc`'s chain (explain_load_failure words these)."""
    from huggingface_hub.errors import GatedRepoError, LocalEntryNotFoundError, RepositoryNotFoundError

    refusals = (GatedRepoError, LocalEntryNotFoundError, RepositoryNotFoundError)
    return any(isinstance(e, refusals) for e in _exception_chain(exc))


def explain_load_failure(spec: ModelSpec, role: str, exc: BaseException) -> ModelLoadError:
    """Turn a from_pretrained failure into one clear sentence or two."""
    from huggingface_hub.errors import GatedRepoError, LocalEntryNotFoundError, RepositoryNotFoundError

    short = spec.name.rsplit("/", 1)[-1]
    hint = LOCAL_HINT.format(name=spec.name, short=short)
    chain = _exception_chain(exc)
    if spec.kind == "local":
        return ModelLoadError(f"could not load {role} from folder '{spec.name}': {exc}")
    if any(isinstance(e, GatedRepoError) for e in chain):
        return ModelLoadError(f"{role} '{spec.name}' is gated on the hub: accept its licence and log in. {hint}")
    if any(isinstance(e, RepositoryNotFoundError) for e in chain):
        return ModelLoadError(f"{role} '{spec.name}' does not exist on the hub (check the spelling). {hint}")
    if hub_offline() or any(isinstance(e, LocalEntryNotFoundError) for e in chain):
        why = "HF_HUB_OFFLINE is set" if hub_offline() else "the hub could not be reached"
        return ModelLoadError(
            f"{role} '{spec.name}' is not in the local cache and {why}, so it cannot be downloaded. {hint}"
        )
    return ModelLoadError(f"could not load {role} '{spec.name}': {exc}. {hint}")


def _exception_chain(exc: BaseException) -> list[BaseException]:
    seen: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and current not in seen:
        seen.append(current)
        current = current.__cause__ or current.__context__
    return seen


def load_config(spec: ModelSpec, role: str, location: str | None = None):
    from transformers import AutoConfig

    try:
        return AutoConfig.from_pretrained(location or spec.location)
    except Exception as exc:  # noqa: BLE001 - translated for the user, with the cause attached
        raise explain_load_failure(spec, role, exc) from exc


def is_vision_config(config) -> bool:
    from transformers.models.auto.modeling_auto import MODEL_FOR_IMAGE_TEXT_TO_TEXT_MAPPING_NAMES

    return config.model_type in MODEL_FOR_IMAGE_TEXT_TO_TEXT_MAPPING_NAMES


def quiet_transformers() -> None:
    """Silence per-load progress bars; the CLI shows its own progress."""
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    hf_logging.set_verbosity_error()
