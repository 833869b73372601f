"""Images that arrive from clients: data URLs, base64, http(s) URLs and local paths, into a content-addressed store.

A server must not become a way into its own network or file system, so every source has a rule:
- base64 / data URLs: decoded with a byte cap;
- http(s) URLs: only when enabled (XTHINK_ALLOW_URLS=1); the host's addresses are resolved (under their
  own deadline, XTHINK_DNS_TIMEOUT) and checked: loopback, private, link-local, multicast and reserved
  addresses are refused, IPv4 carried inside IPv6 (mapped, compatible, translated, NAT64, 6to4, Teredo)
  included, unless XTHINK_ALLOW_PRIVATE_URLS=1 or the host is listed in XTHINK_URL_ALLOW_HOSTS (internal
  image stores). The connection goes to the checked address (no second DNS answer can swap it), redirects
  are followed by hand, each hop checked again and never to another scheme, and the body is asked for
  uncompressed (an encoded body is refused, so the byte cap counts what is held in memory) and read with a
  byte cap and a deadline;
- local paths (and file:// URLs): only under XTHINK_IMAGE_ROOT, resolved first so `..` and symlinks cannot
  leave it.
Every image is decoded (pixel cap included) before it is stored as `<sha256>.<ext>` (tools/images/store.py,
bounded in size and age): state then names it by that path, never by its pixels.
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
import os
import socket
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urljoin, urlsplit

from tools.images.store import (  # noqa: F401 (re-exported: callers import the store's names from here)
    ContentStore,
    ImageInputError,
    StoreBound,
    StoredImage,
    default_store_dir,
    env_number,
)
from tools.images.pixels import DEFAULT_MAX_PIXELS

DEFAULT_MAX_BYTES = 20 * 1024 * 1024
DEFAULT_DNS_TIMEOUT_S = 5.0
MAX_REDIRECTS = 3


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


def fetch_url(url: str, policy: ImagePolicy, label: str = "image") -> bytes:
    """GET an http(s) image under the policy's rules (see the module docstring)."""
    if not policy.allow_urls:
        raise ImageInputError(f"{label}: image URLs are off; send the image as a data URL (the server enables "
                              "URLs with XTHINK_ALLOW_URLS=1)", 403)  # fmt: skip
    import httpx

    deadline = time.monotonic() + policy.timeout_s
    first = url
    with httpx.Client(follow_redirects=False, timeout=policy.timeout_s, trust_env=False) as client:
        for _ in range(MAX_REDIRECTS + 1):
            response = None if time.monotonic() > deadline else _get_checked(client, url, policy, label, deadline)
            if response is None:
                raise ImageInputError(f"{label}: fetching {first[:80]} took over {policy.timeout_s:g} s", 504)
            if not isinstance(response, str):
                return response
            _check_redirect(url, response, label)
            url = response
    raise ImageInputError(f"{label}: more than {MAX_REDIRECTS} redirects", 400)


def _check_redirect(current: str, target: str, label: str) -> None:
    """A redirect keeps its scheme (an http -> https upgrade aside): never to file://, ftp:// or back to http."""
    before, after = urlsplit(current).scheme, urlsplit(target).scheme
    if after != before and (before, after) != ("http", "https"):
        raise ImageInputError(f"{label}: a redirect from {before}:// to {after or 'another'}:// is refused", 400)


def _get_checked(client, url: str, policy: ImagePolicy, label: str, deadline: float) -> bytes | str | None:
    """One hop: the body, the next URL of a redirect, or None past the deadline."""
    import httpx

    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ImageInputError(f"{label}: only http(s) image URLs are fetched, not '{url[:80]}'", 400)
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        raise ImageInputError(f"{label}: '{url[:80]}' has no valid port", 400) from None
    address = _checked_address(parts.hostname, port, policy, label, deadline)
    host = f"[{address}]" if ":" in address else address
    netloc = f"{host}:{parts.port}" if parts.port else host
    direct = parts._replace(netloc=netloc).geturl()
    headers = {"Host": parts.netloc.rpartition("@")[2], "Accept": "image/*", "Accept-Encoding": "identity"}
    try:
        with client.stream("GET", direct, headers=headers, extensions={"sni_hostname": parts.hostname}) as response:
            if response.is_redirect:
                return urljoin(url, response.headers.get("location", ""))
            if response.status_code != 200:
                raise ImageInputError(f"{label}: {url[:80]} answered HTTP {response.status_code}", 502)
            return _read_capped(response, policy, label, deadline)
    except httpx.TimeoutException:
        return None
    except httpx.HTTPError as exc:
        raise ImageInputError(f"{label}: could not fetch {url[:80]} ({type(exc).__name__})", 502) from None


def _read_capped(response, policy: ImagePolicy, label: str, deadline: float) -> bytes | None:
    """The body as sent, never decompressed: a few KB of gzip or zstd can inflate to gigabytes, so an
    encoded body is refused (the request asked for `identity`) and the cap counts the bytes held."""
    encoding = response.headers.get("content-encoding", "").strip().lower()
    if encoding not in ("", "identity"):
        raise ImageInputError(f"{label}: the server sent a compressed body (Content-Encoding: {encoding[:20]}); "
                              "image URLs must be served uncompressed", 502)  # fmt: skip
    declared = response.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > policy.max_bytes:
        raise ImageInputError(f"{label} is over the size limit of {policy.max_bytes:,} bytes", 413)
    body = bytearray()
    for chunk in response.iter_raw():
        body += chunk
        if len(body) > policy.max_bytes:
            raise ImageInputError(f"{label} is over the size limit of {policy.max_bytes:,} bytes", 413)
        if time.monotonic() > deadline:
            return None
    return bytes(body)


# IPv6 prefixes whose last 32 bits are an IPv4 address: compatible (::/96), mapped, translated (RFC 2765)
# and the well-known NAT64 prefix (RFC 6052). The local-use NAT64 prefix (RFC 8215) is refused whole: its
# operator picks where the IPv4 address sits, and it never routes on the public internet anyway.
_LOW32_PREFIXES = tuple(ipaddress.ip_network(n) for n in ("::/96", "::ffff:0:0/96", "::ffff:0:0:0/96", "64:ff9b::/96"))
_LOCAL_NAT64 = ipaddress.ip_network("64:ff9b:1::/48")
_DNS_SLOTS = threading.BoundedSemaphore(8)  # lookups at once: a hanging resolver cannot pile up threads


def _with_embedded(ip) -> list:
    """The address and any IPv4 address carried inside an IPv6 one (mapped, compatible, translated, NAT64,
    6to4, both ends of Teredo): each must be public, or a v6 form could reach a private v4 host."""
    parts = [ip]
    if isinstance(ip, ipaddress.IPv6Address):
        low = ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
        parts += [low] if any(ip in net for net in _LOW32_PREFIXES) else []
        parts += [ip.sixtofour] if ip.sixtofour else []
        parts += list(ip.teredo or ())
    return parts


def _is_public(ip) -> bool:
    return ip not in _LOCAL_NAT64 and all(part.is_global for part in _with_embedded(ip))


def _checked_address(hostname: str, port: int, policy: ImagePolicy, label: str, deadline: float | None = None) -> str:
    """The first address of the host, after checking that every address it resolves to is allowed."""
    left = policy.timeout_s if deadline is None else deadline - time.monotonic()
    infos = _resolve(hostname, port, max(min(policy.dns_timeout_s, left), 0.0), label)
    if infos is None:
        limit = f"{policy.dns_timeout_s:g} s" if policy.dns_timeout_s <= left else "the fetch's time limit"
        raise ImageInputError(f"{label}: looking up '{hostname[:80]}' took over {limit}", 504)
    addresses = [info[4][0] for info in infos]
    private_ok = policy.allow_private or policy.host_allowed(hostname, port)
    for address in addresses:
        ip = ipaddress.ip_address(address.split("%")[0])
        if ip.is_multicast or ip.is_unspecified:
            raise ImageInputError(f"{label}: '{hostname}' is not a host address", 403)
        if not private_ok and not _is_public(ip):
            raise ImageInputError(f"{label}: '{hostname}' is a loopback, private or link-local address; such URLs "
                                  "are refused", 403)  # fmt: skip
    return addresses[0]


def _resolve(hostname: str, port: int, timeout_s: float, label: str) -> list | None:
    """getaddrinfo under a deadline (None when late): it has none of its own, and a slow resolver must not
    hold a request. The lookup runs in a daemon thread (at most 8 at once), left to finish on its own if late."""
    if not _DNS_SLOTS.acquire(timeout=timeout_s):
        return None
    answer: dict = {}
    done = threading.Event()

    def lookup() -> None:
        try:
            answer["infos"] = socket.getaddrinfo(hostname, port, type=socket.SOCK_STREAM)
        except (OSError, UnicodeError) as exc:  # UnicodeError: a name IDNA cannot encode (empty or long labels)
            answer["error"] = exc
        finally:
            _DNS_SLOTS.release()
            done.set()

    threading.Thread(target=lookup, name="xthink-dns", daemon=True).start()
    if not done.wait(timeout_s):
        return None
    if "infos" not in answer or not answer["infos"]:
        raise ImageInputError(f"{label}: the host '{hostname[:80]}' cannot be resolved", 400)
    return answer["infos"]


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
