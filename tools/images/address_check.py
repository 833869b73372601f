"""Which addresses an image URL may reach: a server must not become a way into its own network.

The host's addresses are resolved (under their own deadline, XTHINK_DNS_TIMEOUT) and checked: loopback,
private, link-local, multicast and reserved addresses are refused, IPv4 carried inside IPv6 (mapped,
compatible, translated, NAT64, 6to4, Teredo) included, unless XTHINK_ALLOW_PRIVATE_URLS=1 or the host is
listed in XTHINK_URL_ALLOW_HOSTS (internal image stores). The fetch then connects to the checked address
(tools/images/url_fetch.py), so no second DNS answer can swap it.
"""

from __future__ import annotations

import ipaddress
import socket
import threading
import time

from tools.images.inputs import ImagePolicy
from tools.images.store import ImageInputError

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


def checked_address(hostname: str, port: int, policy: ImagePolicy, label: str, deadline: float | None = None) -> str:
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
