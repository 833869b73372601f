"""Images that arrive from clients: data URLs, base64, http(s) URLs and local paths, into a content-addressed store.

A server must not become a way into its own network or file system, so every source has a rule:
- base64 / data URLs: decoded with a byte cap (tools/images/inputs.py);
- http(s) URLs: only when enabled (XTHINK_ALLOW_URLS=1), to public addresses unless the operator allows
  others, redirects checked hop by hop, the body capped and under a deadline (tools/images/url_fetch.py,
  tools/images/address_check.py);
- local paths (and file:// URLs): only under XTHINK_IMAGE_ROOT, resolved first so `..` and symlinks cannot
  leave it (tools/images/inputs.py).
Every image is decoded (pixel cap included) before it is stored as `<sha256>.<ext>` (tools/images/store.py,
bounded in size and age): state then names it by that path, never by its pixels.
"""

from __future__ import annotations

from tools.images.inputs import ImagePolicy, decode_base64, read_local
from tools.images.store import ImageInputError, StoredImage
from tools.images.url_fetch import fetch_url


def acquire(source: str, policy: ImagePolicy, label: str = "image") -> StoredImage:
    """A data URL, an http(s) URL or a local path, read under the policy and stored by content."""
    if not isinstance(source, str) or not source.strip():
        raise ImageInputError(f"{label}: no image data or URL was given")
    source = source.strip()
    if source.startswith("data:"):
        data = decode_base64(source, policy, label)
    elif source.split(":", 1)[0].lower() in ("http", "https"):
        data = fetch_url(source, policy, label)
    elif "://" in source and not source.startswith("file://"):
        raise ImageInputError(f"{label}: unsupported URL scheme in '{source[:40]}'; use a data URL or http(s)")
    else:
        data = read_local(source, policy, label)
    return policy.store.put(data, label)
