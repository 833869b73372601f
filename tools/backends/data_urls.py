"""Images as PNG data URLs for the OpenAI-compatible servers and vLLM's `chat`, encoded once per image content.

Keyed by a hash of the pixels, never by a caller's id: ids such as `image_1` repeat across samples. A repeated
image is then sent byte-identical, which is what lets a server's prefix cache reuse its encoding.
"""

from __future__ import annotations

import base64
import io
import os
from collections import OrderedDict
from threading import Lock

from PIL import Image

from tools.images.pixels import fingerprint

DEFAULT_DATA_URL_CACHE_MB = 256


class DataUrlCache:
    """PNG data URLs by image content, so a repeated image is encoded once and sent byte-identical.

    Bounded in bytes, least recently used out first (XTHINK_DATA_URL_CACHE_MB, default 256): a count says
    nothing here, since one 8K image's data URL is over 100 MB. A URL larger than the whole bound is sent,
    not kept.
    """

    def __init__(self, max_mb: float | None = None):
        self.max_bytes = int((data_url_cache_mb() if max_mb is None else max_mb) * 1024 * 1024)
        self._urls: OrderedDict[str, str] = OrderedDict()
        self._bytes = 0
        self._lock = Lock()

    @property
    def nbytes(self) -> int:
        return self._bytes

    def get(self, image: Image.Image) -> str:
        key = fingerprint(image)
        with self._lock:
            if key in self._urls:
                self._urls.move_to_end(key)
                return self._urls[key]
        url = data_url(image)
        if len(url) > self.max_bytes:
            return url
        with self._lock:
            if key not in self._urls:
                self._urls[key] = url
                self._bytes += len(url)
            while self._bytes > self.max_bytes:
                self._bytes -= len(self._urls.popitem(last=False)[1])
        return url


def data_url_cache_mb() -> float:
    """XTHINK_DATA_URL_CACHE_MB (megabytes of data URLs an HTTP or vLLM perceiver keeps; 0 keeps none)."""
    raw = os.environ.get("XTHINK_DATA_URL_CACHE_MB", "").strip()
    try:
        value = float(raw) if raw else DEFAULT_DATA_URL_CACHE_MB
    except ValueError:
        value = -1.0
    if not 0 <= value < float("inf"):
        raise ValueError(f"XTHINK_DATA_URL_CACHE_MB must be a number of megabytes >= 0, not '{raw[:40]}'")
    return value


def data_url(image: Image.Image) -> str:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")
