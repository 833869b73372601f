"""What a server accepts from clients as images (ImagePolicy, from the XTHINK_* variables it starts with), and
the two sources that need no network: base64 / data URLs, decoded with a byte cap, and local paths (and file://
URLs), read only under XTHINK_IMAGE_ROOT and resolved first so `..` and symlinks cannot leave it.

Every source, and the rule for each, is listed in tools/images/acquire.py; URLs are fetched in
tools/images/url_fetch.py.
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
import os
from dataclasses import dataclass, field
from pathlib import Path

from tools.images.pixels import DEFAULT_MAX_PIXELS
from tools.images.store import ContentStore, ImageInputError, StoreBound, default_store_dir, env_number

DEFAULT_MAX_BYTES = 20 * 1024 * 1024
DEFAULT_DNS_TIMEOUT_S = 5.0


def _flag(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() in ("1", "true", "yes", "on")


def parse_allow_hosts(text: str) -> frozenset[tuple[str, int | None]]:
    """XTHINK_URL_ALLOW_HOSTS: comma-separated `host`, `host:port` or `[v6]:port` entries, as (host, port)."""
    hosts = set()
    for entry in (e.strip().lower() for e in text.split(",")):
        if entry:
            hosts.add(_allow_entry(entry))
    return frozenset(hosts)


def _allow_entry(entry: str) -> tuple[str, int | None]:
    if entry.startswith("["):
        host, _, rest = entry[1:].partition("]")
        port = rest[1:] if rest.startswith(":") else None if not rest else "bad"
    elif entry.count(":") == 1:
        host, port = entry.split(":")
    else:
        host, port = entry, None
    bad = not host or any(c in host for c in "/@?#[] ") or (port is not None and not port.isdigit())
    bad = bad or (":" in host and not _is_ip(host))  # a bare IPv6 address, or nothing
    if bad or (port is not None and not 0 < int(port) < 65536):
        raise ImageInputError(f"the server's XTHINK_URL_ALLOW_HOSTS entry '{entry[:60]}' is not host, host:port "
                              "or [ipv6]:port", 500)  # fmt: skip
    return _host_key(host), int(port) if port is not None else None


def _is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def _host_key(host: str) -> str:
    """One spelling per host: IP literals in their compressed form, names lower case without a final dot."""
    try:
        return str(ipaddress.ip_address(host))
    except ValueError:
        return host.lower().rstrip(".")


@dataclass(frozen=True)
class ImagePolicy:
    """What a client may send. `from_env()` reads the XTHINK_* variables a server is started with."""

    allow_urls: bool = False
    allow_private: bool = False
    allow_hosts: frozenset[tuple[str, int | None]] = frozenset()  # (host, port or None for any): may be private
    image_root: Path | None = None
    max_bytes: int = DEFAULT_MAX_BYTES
    max_pixels: int = DEFAULT_MAX_PIXELS
    timeout_s: float = 10.0
    dns_timeout_s: float = DEFAULT_DNS_TIMEOUT_S
    store_dir: Path | None = None
    store_bound: StoreBound = field(default_factory=StoreBound)

    @classmethod
    def from_env(cls, **overrides) -> ImagePolicy:
        root = os.environ.get("XTHINK_IMAGE_ROOT")
        values = dict(
            allow_urls=_flag("XTHINK_ALLOW_URLS"),
            allow_private=_flag("XTHINK_ALLOW_PRIVATE_URLS"),
            allow_hosts=parse_allow_hosts(os.environ.get("XTHINK_URL_ALLOW_HOSTS", "")),
            image_root=Path(root).resolve() if root else None,
            max_bytes=env_number("XTHINK_MAX_IMAGE_BYTES", DEFAULT_MAX_BYTES, int) or DEFAULT_MAX_BYTES,
            max_pixels=env_number("XTHINK_MAX_PIXELS", DEFAULT_MAX_PIXELS, int) or DEFAULT_MAX_PIXELS,
            dns_timeout_s=env_number("XTHINK_DNS_TIMEOUT", DEFAULT_DNS_TIMEOUT_S) or DEFAULT_DNS_TIMEOUT_S,
            store_bound=StoreBound.from_env(),
        )
        values.update(overrides)
        return cls(**values)

    def host_allowed(self, hostname: str, port: int) -> bool:
        """Whether XTHINK_URL_ALLOW_HOSTS lists this host (any port) or this host and port."""
        key = _host_key(hostname)
        return (key, None) in self.allow_hosts or (key, port) in self.allow_hosts

    @property
    def store(self) -> ContentStore:
        return ContentStore(self.store_dir or default_store_dir(), self.max_pixels, self.store_bound)


def decode_base64(data: str, policy: ImagePolicy, label: str = "image") -> bytes:
    """Decode base64 (a data URL's payload or a bare string) with the byte cap checked before decoding."""
    payload = data.strip()
    if payload.startswith("data:"):
        header, sep, payload = payload.partition(",")
        if not sep or ";base64" not in header:
            raise ImageInputError(f"{label}: a data URL must look like data:image/png;base64,<data>")
        if not header[5:].startswith("image/"):
            raise ImageInputError(f"{label}: the data URL's type is '{header[5:].split(';')[0]}', not an image")
    if len(payload) * 3 // 4 > policy.max_bytes:
        raise ImageInputError(f"{label} is over the size limit of {policy.max_bytes:,} bytes", 413)
    try:
        return base64.b64decode("".join(payload.split()), validate=True)
    except (binascii.Error, ValueError):
        raise ImageInputError(f"{label}: the base64 data is not valid base64") from None


def read_local(path: str, policy: ImagePolicy, label: str = "image") -> bytes:
    """A file under XTHINK_IMAGE_ROOT, never outside it (resolved first, so `..` and symlinks count)."""
    if policy.image_root is None:
        raise ImageInputError(f"{label}: local file paths are off; the server sets XTHINK_IMAGE_ROOT to allow "
                              "files under one folder, or send the image as a data URL", 403)  # fmt: skip
    root = policy.image_root
    shown = path[:200]
    try:
        raw = Path(path[7:] if path.startswith("file://") else path)
        target = (raw if raw.is_absolute() else root / raw).resolve()
        if not target.is_relative_to(root):
            raise ImageInputError(f"{label}: '{shown}' is outside the allowed image folder", 403)
        if not target.is_file():
            raise ImageInputError(f"{label}: '{shown}' does not exist under the allowed image folder", 404)
        if target.stat().st_size > policy.max_bytes:
            raise ImageInputError(f"{label} is over the size limit of {policy.max_bytes:,} bytes", 413)
        return target.read_bytes()
    except ImageInputError:
        raise
    except (ValueError, OSError, RuntimeError):  # NUL bytes, names too long, symlink loops, unreadable files
        raise ImageInputError(f"{label}: '{shown}' is not a readable file path", 400) from None
