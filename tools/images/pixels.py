"""Open, validate and normalise images; keep them in a store keyed by id; crop regions.

Graph state carries only image ids and paths: pixels live here, out of every checkpoint. Every image is
validated when it enters the store, so a bad file fails before any model runs, with a message that
names the file and the problem. All images leave as RGB (palette, alpha, CMYK, 16-bit, first frame of
an animation), which is what every processor expects.
"""

from __future__ import annotations

import hashlib
import stat
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageFile, UnidentifiedImageError

DEFAULT_MAX_PIXELS = 64_000_000  # well above any benchmark image, well below a decompression bomb
MIN_CROP_SIDE = 384  # zoomed regions are enlarged to at least the perceiver's crop size
MAX_ASPECT = 10.0  # longer/shorter side; beyond it images are padded (Qwen2-VL's processor refuses over 200)


class ImageError(ValueError):
    """An image cannot be used; the message names the file and what to do."""


@dataclass(frozen=True)
class ImageRef:
    """What graph state knows of an image."""

    id: str
    path: str
    width: int
    height: int
    fingerprint: str = ""  # hash of the normalised pixels: the same image has the same one in any run


def load_image(path: str | Path, max_pixels: int = DEFAULT_MAX_PIXELS) -> Image.Image:
    """Read one image file fully and return it as RGB, or raise ImageError saying what is wrong."""
    p = Path(path)
    try:
        status = p.stat()  # one system call, not three: each waits for the interpreter lock again under load
    except (FileNotFoundError, NotADirectoryError):
        raise ImageError(f"image '{p}' does not exist; check the path") from None
    except (OSError, ValueError) as exc:  # a symlink loop, a name too long, a NUL byte, no permission
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise ImageError(f"image '{p}' cannot be opened ({reason}); check the path") from None
    if not stat.S_ISREG(status.st_mode):
        raise ImageError(f"image '{p}' is not a file")
    if status.st_size == 0:
        raise ImageError(f"image '{p}' is empty (0 bytes)")
    ImageFile.LOAD_TRUNCATED_IMAGES = False
    if Image.MAX_IMAGE_PIXELS is not None and Image.MAX_IMAGE_PIXELS < max_pixels:
        Image.MAX_IMAGE_PIXELS = max_pixels  # our own cap (checked below) replaces PIL's smaller bomb limit
    try:
        with Image.open(p) as img:
            _check_size(p, img, max_pixels)
            img.seek(0)
            img.load()
            return to_rgb(img)
    except ImageError:
        raise
    except UnidentifiedImageError:
        raise ImageError(f"'{p}' is not an image PIL can read (PNG, JPEG, GIF, WebP, BMP, TIFF ...)") from None
    except Image.DecompressionBombError:
        raise ImageError(f"image '{p}' has too many pixels to open safely (limit {max_pixels:,})") from None
    except (OSError, SyntaxError, ValueError) as exc:
        raise ImageError(f"image '{p}' is truncated or corrupt ({exc}); re-export or replace the file") from None


def _check_size(path: Path, img: Image.Image, max_pixels: int) -> None:
    width, height = img.size
    if width <= 0 or height <= 0:
        raise ImageError(f"image '{path}' has zero size ({width}x{height})")
    if width * height > max_pixels:
        raise ImageError(
            f"image '{path}' is {width}x{height} = {width * height:,} pixels, over the limit of {max_pixels:,}; "
            "downscale it first"
        )


def to_rgb(img: Image.Image) -> Image.Image:
    """Normalise any PIL mode to RGB: alpha over white, CMYK converted, 16/32-bit scaled to 8-bit."""
    if img.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        arr = np.asarray(img, dtype=np.float64)
        peak = float(arr.max(initial=0))
        # 16-bit modes span 0-65535; 32-bit int and float images are scaled by their own range.
        top = 65535.0 if img.mode.startswith("I;16") or (img.mode == "I" and peak > 255) else max(peak, 1.0)
        scaled = np.clip(arr / top * 255.0, 0, 255).astype(np.uint8)
        return Image.fromarray(scaled, mode="L").convert("RGB")
    if img.mode == "P":
        img = img.convert("RGBA")
    if img.mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        rgba = img.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    return img.convert("RGB")


def fingerprint(img: Image.Image) -> str:
    """A content hash of the pixels, so caches key on what an image is, not on a per-run id."""
    digest = hashlib.blake2b(img.tobytes(), digest_size=16)
    digest.update(f"{img.mode}{img.size}".encode())
    return digest.hexdigest()


def crop_region(img: Image.Image, box: tuple[float, float, float, float]) -> Image.Image:
    """Crop a normalised [x0, y0, x1, y1] box from the original pixels and enlarge it so its longer side
    is at least MIN_CROP_SIDE.

    Zooming is the point of a region request: the perceiver sees the detail at a higher resolution
    than it had in the whole image. The box must already be valid (tools/boxes.py reads and repairs it).
    """
    x0, y0, x1, y1 = validate_box(box)
    w, h = img.size
    left, top = min(int(x0 * w), w - 1), min(int(y0 * h), h - 1)
    right, bottom = max(int(round(x1 * w)), left + 1), max(int(round(y1 * h)), top + 1)
    crop = img.crop((left, top, right, bottom))
    scale = max(MIN_CROP_SIDE / max(crop.size), 1.0)
    if scale > 1.0:
        crop = crop.resize((max(1, round(crop.width * scale)), max(1, round(crop.height * scale))), Image.BICUBIC)
    return crop


def fit_aspect(img: Image.Image, max_aspect: float = MAX_ASPECT) -> Image.Image:
    """Pad the shorter side with white so the aspect ratio is at most `max_aspect` (a 1-pixel-high strip
    is a valid crop, but processors refuse it); images already within the ratio come back unchanged."""
    w, h = img.size
    if max(w, h) <= max_aspect * min(w, h):
        return img
    size = (w, max(h, round(w / max_aspect))) if w > h else (max(w, round(h / max_aspect)), h)
    canvas = Image.new("RGB", size, (255, 255, 255))
    canvas.paste(img, ((size[0] - w) // 2, (size[1] - h) // 2))
    return canvas


def validate_box(box) -> tuple[float, float, float, float]:
    """Check a region is four numbers in [0, 1] with x0 < x1 and y0 < y1; raise ValueError otherwise."""
    if not isinstance(box, (list, tuple)) or len(box) != 4:
        raise ValueError("region must be four numbers [x0, y0, x1, y1]")
    try:
        x0, y0, x1, y1 = (float(v) for v in box)
    except (TypeError, ValueError):
        raise ValueError("region must be four numbers [x0, y0, x1, y1]") from None
    if not all(0.0 <= v <= 1.0 for v in (x0, y0, x1, y1)):
        raise ValueError("region coordinates must be between 0 and 1 (fractions of the image size)")
    if not (x0 < x1 and y0 < y1):
        raise ValueError("region must have x0 < x1 and y0 < y1")
    return x0, y0, x1, y1


class ImageStore:
    """Validated, normalised images by id. Ids are `image_1`, `image_2`, ... in the order added."""

    def __init__(self, max_pixels: int = DEFAULT_MAX_PIXELS):
        self.max_pixels = max_pixels
        self._images: dict[str, Image.Image] = {}
        self._refs: dict[str, ImageRef] = {}
        self._lock = threading.Lock()

    def add(self, path: str | Path, image_id: str | None = None) -> ImageRef:
        img = load_image(path, self.max_pixels)
        with self._lock:
            image_id = image_id or f"image_{len(self._refs) + 1}"
            ref = ImageRef(id=image_id, path=str(path), width=img.width, height=img.height,
                           fingerprint=fingerprint(img))
            self._images[image_id] = img
            self._refs[image_id] = ref
        return ref

    def get(self, image_id: str) -> Image.Image:
        try:
            return self._images[image_id]
        except KeyError:
            known = ", ".join(self._refs) or "none"
            raise KeyError(f"unknown image id '{image_id}' (known: {known})") from None

    def ref(self, image_id: str) -> ImageRef:
        return self._refs[image_id]

    def __contains__(self, image_id: str) -> bool:
        return image_id in self._refs
