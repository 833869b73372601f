"""The images a trace page embeds: each once, as a downscaled JPEG data URI, within a per-image cap and a
per-page cap (IMAGE_SIDE, IMAGE_BYTES, PAGE_IMAGE_BYTES); boxes are drawn in normalised coordinates, so they
land in the same place on the smaller image.

A page is a file people pass around, so what it embeds is bounded by what it was built from: a run folder's
page embeds only files inside that run folder (a trace that names /etc/passwd or ~/private.jpg gets a
placeholder saying why it was not embedded, never the file); a page for one trace embeds the images its
answer used, wherever they are (the user named that trace), and lists those files in the page. A thread's
page (a conversation read from a checkpoint database) embeds only files of the image store whose name is the
sha256 of their bytes: a database is data anyone may have written, so a path it names is never trusted.
"""

from __future__ import annotations

import base64
import hashlib
import io
from pathlib import Path
from typing import TYPE_CHECKING

from PIL import Image

from tools.files.folders import safe_name
from tools.images.store import STORE_FILE

if TYPE_CHECKING:
    from evals.viewer.data import PageData

IMAGE_SIDE = 768  # longest side of an embedded image, in pixels
IMAGE_BYTES = 120_000  # at most this many JPEG bytes per image (smaller sides and lower quality until it fits)
PAGE_IMAGE_BYTES = 60_000_000  # all images of one page together; past it the per-image cap shrinks


class Images:
    """Embeds each image once, as a downscaled JPEG data URI, within the per-image and per-page caps.

    `confined`: only files inside the folders the page is built from (a run page); `listed`: record every
    embedded file's path in the page (an answer page, whose trace may name files anywhere); `store`: only
    content-addressed files of this image store (a thread page, whose paths come from a database).
    """

    def __init__(self, page: PageData, budget_images: int, confined: bool = False, listed: bool = False,
                 store: Path | None = None):
        self.page = page
        self.cap = max(8_000, min(IMAGE_BYTES, PAGE_IMAGE_BYTES // max(budget_images, 1)))
        self.used = 0
        self.confined, self.listed, self.store = confined, listed, store
        self._by_path: dict[str, tuple[str | None, str | None]] = {}
        self._checked: dict[str, Path | str] = {}  # store pages: each path a thread names, checked (hashed) once
        self._noted: set[str] = set()

    def add(self, path: str, roots: list[Path], benchmark: str, sample_id: str) -> tuple[str | None, str | None]:
        """(image id, None) when embedded, else (None, why it was not)."""
        if self.store is not None:
            if path not in self._checked:
                self._checked[path] = _store_file(path, self.store)
            found = self._checked[path]
        else:
            found = _find_image(path, roots, benchmark, sample_id, self.confined)
        if isinstance(found, str):
            note = f"image {found}: {path}"
            if note not in self._noted:  # a thread names its images again on every turn: one note each
                self._noted.add(note)
                self.page.notes.append(note)
            return None, found
        key = str(found.resolve())
        if key not in self._by_path:
            self._by_path[key] = self._embed(found)
        return self._by_path[key]

    def _embed(self, found: Path) -> tuple[str | None, str | None]:
        if self.used >= PAGE_IMAGE_BYTES:
            return None, "the page's image budget is spent"
        uri = encode_image(found, self.cap)
        if uri is None:
            return None, "not a readable image"
        self.used += len(uri)
        image_id = f"i{len(self.page.images)}"
        self.page.images[image_id] = uri
        if self.listed:
            self.page.embedded.append(str(found.resolve()))
        return image_id, None


def _find_image(path: str, roots: list[Path], benchmark: str, sample_id: str, confined: bool) -> Path | str:
    """The file to embed for a trace's image path, or why there is none (`confined`: inside `roots` only)."""
    candidates = [Path(path)] + [root / Path(path).name for root in roots]
    for root in roots:
        folder = root / "images" / benchmark
        candidates += [folder / Path(path).name, *sorted(folder.glob(safe_name(sample_id) + ".*"))]
    existing = [c for c in candidates if c.is_file()]
    if not existing:
        return "not found"
    if not confined:
        return existing[0]
    inside = [c for c in existing if any(c.resolve().is_relative_to(r.resolve()) for r in roots)]
    return inside[0] if inside else "outside the run folder"


def _store_file(path: str, store: Path) -> Path | str:
    """The image store's file for a path a database names, or why it is not one: it must sit directly in the
    store, be named `<sha256>.<ext>`, and hold exactly the bytes its name says (no symlink or other file)."""
    candidate = Path(path)
    if not STORE_FILE.fullmatch(candidate.name):
        return "not an image store file"
    inside = Path(store) / candidate.name
    if candidate.parent.resolve() != Path(store).resolve() or inside.is_symlink() or not inside.is_file():
        return f"not in the image store {store} (set XTHINK_IMAGE_STORE as when chatting)"
    if hashlib.sha256(inside.read_bytes()).hexdigest() != candidate.name.split(".")[0]:
        return "its bytes do not match its name in the image store"
    return inside


def encode_image(path: Path, cap: int) -> str | None:
    """A JPEG data URI of the image, longest side at most IMAGE_SIDE, at most `cap` bytes."""
    try:
        with Image.open(path) as img:
            img.draft("RGB", (IMAGE_SIDE, IMAGE_SIDE))  # JPEG: decode at a reduced scale, fast for 8K files
            rgb = img.convert("RGB")
    except (OSError, ValueError, Image.DecompressionBombError):
        return None
    side = IMAGE_SIDE
    while side >= 96:
        small = rgb.copy()
        small.thumbnail((side, side))
        for quality in (80, 65, 50):
            buf = io.BytesIO()
            small.save(buf, "JPEG", quality=quality)
            if buf.tell() <= cap:
                return "data:image/jpeg;base64," + base64.b64encode(buf.getvalue()).decode()
        side = int(side * 0.7)
    return None
