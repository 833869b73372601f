"""The paper's checkpoints converted on first use: one conversion per source in the cache, made once.

A perceiver named by a paper checkpoint (or any LLaVA-NeXT folder) loads from its conversion under
$XTHINK_CACHE/converted, keyed by the source's name and a fingerprint of its files. Processes that need the
same conversion at once (eval shards, torchrun ranks) take a file lock: the first converts, the others wait
and then find the finished folder.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
from contextlib import contextmanager
from pathlib import Path

from tools.backends.checkpoint_convert import CONVERSION_RECORD, convert, resolve_source

log = logging.getLogger(__name__)

PAPER_CHECKPOINTS = (
    "markendo/llava-extract-qwen3-0.6B",
    "markendo/llava-extract-qwen3-1.7B",
    "markendo/llava-extract-from-scratch-qwen3-0.6B",
    "markendo/llava-extract-from-scratch-qwen3-1.7B",
)


def needs_conversion(model: str) -> bool:
    if model in PAPER_CHECKPOINTS:
        return True
    path = Path(model).expanduser()
    return path.is_dir() and is_llava_next_folder(path)


def is_llava_next_folder(path: Path) -> bool:
    config = path / "config.json"
    if not config.is_file():
        return False
    data = json.loads(config.read_text())
    return "mm_vision_tower" in data and data.get("model_type") != "llava_onevision"


def source_fingerprint(folder: Path) -> str:
    """Sizes and modification times of the checkpoint's top-level files, hashed: a checkpoint retrained in
    place (or a new hub revision) gets a new cache entry; reading gigabytes to hash contents would not pay."""
    files = sorted(p for p in Path(folder).iterdir() if p.is_file() and not p.name.startswith("."))
    entries = [f"{p.name}:{p.stat().st_size}:{p.stat().st_mtime_ns}" for p in files]
    return hashlib.sha256("\n".join(entries).encode()).hexdigest()[:16]


def converted_cache(source: str, folder: Path | None = None) -> Path:
    """Where `source`'s conversion lives: its name plus the fingerprint of its files (`folder`, once resolved)."""
    from tools.files.cache import cache_root

    root = cache_root() / "converted"
    folder = folder if folder is not None else resolve_source(source)
    name = re.sub(r"[^\w.\-]+", "--", source)[:150]
    return root / f"{name}-{source_fingerprint(folder)}"


def ensure_converted(source: str) -> str:
    """For a paper checkpoint (or any LLaVA-NeXT folder): convert once into the cache (under the lock), then
    reuse it."""
    target = converted_cache(source, resolve_source(source))
    if _complete(target):
        return str(target)
    locks = target.parent.parent / "locks"  # beside converted/, which then holds conversions only
    locks.mkdir(parents=True, exist_ok=True)
    with _locked(locks / f"{target.name}.lock"):
        if not _complete(target):  # another process may have finished it while this one waited
            log.info("converting %s into %s (first use)", source, target)
            convert(source, target)
            _drop_older(target)
    return str(target)


def _drop_older(target: Path) -> None:
    """Keep the cache to one conversion per source: remove the same source's conversions of earlier versions
    of its files (named `<name>-<fingerprint>`, holding our conversion record), never anything else."""
    import glob
    import shutil

    name = target.name.rsplit("-", 1)[0]
    for other in target.parent.glob(f"{glob.escape(name)}-*"):
        if other != target and re.fullmatch(r"[0-9a-f]{16}", other.name[len(name) + 1 :]) and _complete(other):
            log.info("removing %s, the conversion of an earlier version of the checkpoint", other)
            shutil.rmtree(other, ignore_errors=True)


def _complete(target: Path) -> bool:
    return (target / "config.json").is_file() and (target / CONVERSION_RECORD).is_file()


@contextmanager
def _locked(path: Path):
    """An exclusive fcntl lock on `path` for the block (released by the OS if the process dies)."""
    import fcntl

    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)

