"""Fetching an image URL under the policy: off unless XTHINK_ALLOW_URLS=1, every hop's address checked
(tools/images/address_check.py) and connected to directly, redirects followed by hand (each hop checked again
and never to another scheme), and the body asked for uncompressed (an encoded body is refused, so the byte cap
counts what is held in memory) and read with a byte cap and a deadline.
"""

from __future__ import annotations

import time
from urllib.parse import urljoin, urlsplit

from tools.images.address_check import checked_address
from tools.images.inputs import ImagePolicy
from tools.images.store import ImageInputError

MAX_REDIRECTS = 3


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
    address = checked_address(parts.hostname, port, policy, label, deadline)
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
