"""The content store: validated images on disk as `<sha256>.<ext>`, bounded in size and age.

Serve, LangGraph runs and chat store every image a client sends, so without a bound the folder grows until
the disk is full. The bound (XTHINK_STORE_MAX_MB, XTHINK_STORE_MAX_AGE_DAYS) is kept as the store is used:
each use of a file (the same bytes stored again, a lookup by digest, a conversation's next turn) sets its
mtime, so mtime means "last used"; a prune (tools/images/store_pruning.py) removes files past the age bound,
then the least recently used until the size fits, and never a file used within the grace period (a run
between storing an image and loading it, a thread that is being talked to). A thread whose images were
pruned is told to send them again.
"""

from __future__ import annotations

import hashlib
import io
import logging
import os
import re
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from PIL import Image

from tools.files.cache import cache_root
from tools.images.pixels import DEFAULT_MAX_PIXELS, ImageError, load_image
from tools.images.store_pruning import (
    DAY,
    PruneReport,
    StoreFile,
    drop_stale_parts,
    evict,
    own_files,
    prune_due,
    record_scan,
)

log = logging.getLogger(__name__)

MB = 1024 * 1024
DEFAULT_MAX_MB = 1024
DEFAULT_MAX_AGE_DAYS = 30
DEFAULT_KEEP_RECENT_S = 3600
STORE_FILE = re.compile(r"[0-9a-f]{64}\.[a-z0-9]{1,12}")  # PIL format names: png, jpg, webp, jpeg2000
USUAL_EXTENSIONS = ("png", "jpg", "webp", "gif", "bmp", "tiff")  # tried by name before the folder is listed


class ImageInputError(ValueError):
    """An image from a client cannot be used; `status` is the HTTP code a server should answer with."""

    def __init__(self, message: str, status: int = 400):
        super().__init__(message)
        self.status = status


def env_number(name: str, default: float, kind: type = float) -> float:
    """A numeric setting; a bad value names its variable (the server is misconfigured: a 500)."""
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = kind(raw)
    except ValueError:
        value = -1
    if not value >= 0:  # also NaN
        raise ImageInputError(f"the server's {name} must be a number >= 0, not '{raw[:40]}'", 500)
    return value


def _env_bound(name: str, default: float) -> float | None:
    if os.environ.get(name, "").strip().lower() in ("off", "none"):
        return None
    return env_number(name, default)


def default_store_dir() -> Path:
    return Path(os.environ.get("XTHINK_IMAGE_STORE") or cache_root() / "images")


@dataclass(frozen=True)
class StoreBound:
    """How much the store keeps; None is no bound of that kind. Files used within `keep_recent_s` stay."""

    max_bytes: int | None = DEFAULT_MAX_MB * MB
    max_age_s: float | None = DEFAULT_MAX_AGE_DAYS * DAY
    keep_recent_s: float = DEFAULT_KEEP_RECENT_S

    @classmethod
    def of(cls, max_mb: float | None, max_age_days: float | None, keep_recent_s: float = DEFAULT_KEEP_RECENT_S):
        """From the settings' units; None is no bound. 0 is a bound: only files in the grace period stay."""
        return cls(None if max_mb is None else int(max_mb * MB), None if max_age_days is None else max_age_days * DAY,
                   keep_recent_s)  # fmt: skip

    @classmethod
    def from_env(cls) -> StoreBound:
        """XTHINK_STORE_MAX_MB (default 1024) and XTHINK_STORE_MAX_AGE_DAYS (default 30); `off` lifts one."""
        return cls.of(_env_bound("XTHINK_STORE_MAX_MB", DEFAULT_MAX_MB),
                      _env_bound("XTHINK_STORE_MAX_AGE_DAYS", DEFAULT_MAX_AGE_DAYS))  # fmt: skip

    @property
    def bounded(self) -> bool:
        return self.max_bytes is not None or self.max_age_s is not None


EVERYTHING = StoreBound(max_bytes=0, max_age_s=None, keep_recent_s=0)


@dataclass(frozen=True)
class StoredImage:
    digest: str
    path: Path
    width: int
    height: int


@dataclass
class ContentStore:
    """Validated images named by the sha256 of their bytes: the same image is stored once."""

    root: Path
    max_pixels: int = DEFAULT_MAX_PIXELS
    bound: StoreBound = field(default_factory=StoreBound)

    def __post_init__(self):
        self.root = Path(self.root)

    def put(self, data: bytes, label: str = "image") -> StoredImage:
        """Decode (refusing non-images and too many pixels), then store; raise ImageInputError."""
        digest = hashlib.sha256(data).hexdigest()
        found = self.find(digest, _sniffed_extension(data))
        if found is not None:
            return found
        self.root.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=self.root, prefix="xthink-", suffix=".part", delete=False) as tmp:
            tmp.write(data)
        try:
            img, fmt = self._check(Path(tmp.name), label)
            target = self.root / f"{digest}.{fmt}"
            os.replace(tmp.name, target)
        finally:
            Path(tmp.name).unlink(missing_ok=True)
        self._account(len(data))
        return StoredImage(digest, target, img.width, img.height)

    def find(self, digest: str, extension: str | None = None) -> StoredImage | None:
        """A stored image by digest (hex), or None; finding it counts as a use. With the `extension` its bytes
        give, only that file can be it; without, the usual extensions are tried by name, and only then is the
        folder listed (a listing costs as much as the store is large, and a server looks up every request's
        images)."""
        if not digest or any(c not in "0123456789abcdef" for c in digest) or len(digest) != 64:
            return None
        return self._found(digest, [self.root / f"{digest}.{extension}"] if extension else self._candidates(digest))

    def _candidates(self, digest: str):
        yield from (self.root / f"{digest}.{ext}" for ext in USUAL_EXTENSIONS)
        yield from (path for path in self.root.glob(f"{digest}.*") if path.suffix[1:] not in USUAL_EXTENSIONS)

    def _found(self, digest: str, paths) -> StoredImage | None:
        for path in paths:
            if STORE_FILE.fullmatch(path.name) and _touch(path):
                try:
                    with Image.open(path) as img:
                        return StoredImage(digest, path, img.width, img.height)
                except OSError:  # pruned by another process just now
                    return None
        return None

    def touch(self, paths) -> list[str]:
        """Mark stored files as used (a conversation's images on each turn), so a prune keeps them; return
        those of `paths` that are the store's and gone (pruned). Other paths are left alone."""
        gone = []
        for path in map(str, paths):
            name = Path(path).name
            if STORE_FILE.fullmatch(name) and Path(path).parent == self.root and not _touch(self.root / name):
                gone.append(path)
        return gone

    def files(self) -> list[StoreFile]:
        """The store's own files (regular files named `<sha256>.<ext>`), least recently used first."""
        return sorted((StoreFile(path, st.st_size, st.st_mtime) for path, st in own_files(self.root, STORE_FILE)),
                      key=lambda f: f.used)  # fmt: skip

    def prune(self, bound: StoreBound | None = None, now: float | None = None) -> PruneReport:
        """Remove what is past the bound: too old first, then least recently used until the size fits."""
        bound = bound or self.bound
        now = time.time() if now is None else now
        drop_stale_parts(self.root, now)
        return evict(self.files(), bound, now)

    def _account(self, size: int) -> None:
        """After a write: prune when this process's tally passes the bound, or every RESCAN_S seconds."""
        if not self.bound.bounded:
            return
        key, now = str(self.root), time.monotonic()
        if not prune_due(key, size, self.bound, now):
            return
        try:
            report = self.prune()
        except OSError as exc:  # the image is stored; a store this process cannot list is left as it is
            log.warning("could not prune the image store: %s", exc)
            return
        record_scan(key, report.kept_bytes, self.bound, now)

    def _check(self, path: Path, label: str) -> tuple[Image.Image, str]:
        try:
            img = load_image(path, self.max_pixels)
        except ImageError as exc:
            message = str(exc).replace(f"'{path}'", label).replace(str(path), label)
            status = 413 if "pixels" in message else 400
            raise ImageInputError(message, status) from None
        with Image.open(path) as probe:
            return img, _extension(probe.format)


def _extension(fmt: str | None) -> str:
    """The file extension the store gives an image of this PIL format."""
    fmt = (fmt or "png").lower()
    return "jpg" if fmt == "jpeg" else fmt


def _sniffed_extension(data: bytes) -> str | None:
    """The extension these bytes would be stored under, read from their header (None if PIL cannot tell)."""
    try:
        with Image.open(io.BytesIO(data)) as probe:
            return _extension(probe.format)
    except Exception:  # noqa: BLE001 - not an image: `put` decodes it and says why
        return None


def _touch(path: Path) -> bool:
    """Set mtime to now; False if the file is gone. A read-only store still serves its files."""
    try:
        os.utime(path)
    except FileNotFoundError:
        return False
    except OSError:
        pass
    return True


