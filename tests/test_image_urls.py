"""Image URLs under the server's rules: compressed bodies, address forms, DNS deadlines and allowed hosts.

Real HTTP servers on 127.0.0.1; a resolver that hangs is the one fake (the logic under test is the deadline).
"""

from __future__ import annotations

import gzip
import io
import socket
import time
import tracemalloc

import pytest
from PIL import Image

from tests.image_host import ImageHost
from tools.images.acquire import acquire
from tools.images.address_check import checked_address
from tools.images.inputs import ImagePolicy, parse_allow_hosts
from tools.images.store import ImageInputError

BOMB = gzip.compress(b"\0" * (64 * 1024 * 1024), 9)  # 64 MB of zeros in about 64 KB


def zstd_bomb(megabytes: int = 256) -> bytes:
    """`megabytes` of zeros in about 8 KB of zstd (one frame, decoded by httpx in one piece)."""
    import zstandard

    packer = zstandard.ZstdCompressor(level=3).compressobj()
    return b"".join(packer.compress(b"\0" * (16 << 20)) for _ in range(megabytes // 16)) + packer.flush()


def png_bytes(colour="red") -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (20, 10), colour).save(buf, "PNG")
    return buf.getvalue()


@pytest.fixture(scope="module")
def two_servers():
    """An image server and an 'other internal host' on another port; each may redirect to the other."""
    png = png_bytes()
    first, second = ImageHost(), ImageHost()
    port, other = first.port, second.port
    routes = {
        "/ok.png": (200, {"Content-Length": str(len(png))}, png),
        "/bomb-gzip": (200, {"Content-Encoding": "gzip", "Content-Length": str(len(BOMB))}, BOMB),
        "/bomb-chunked": (200, {"Content-Encoding": "gzip"}, BOMB),
        "/zstd": (200, {"Content-Encoding": "zstd"}, zstd_bomb()),
        "/to-other": (302, {"Location": f"http://127.0.0.1:{other}/ok.png"}, b""),
        "/to-self": (302, {"Location": f"http://127.0.0.1:{port}/ok.png"}, b""),
    }  # fmt: skip
    first.routes.update(routes)
    second.routes.update(routes)
    yield first, second
    first.shutdown()
    second.shutdown()


def url_policy(tmp_path, **kw) -> ImagePolicy:
    return ImagePolicy(allow_urls=True, store_dir=tmp_path / "store", timeout_s=5.0, max_bytes=50_000, **kw)


def test_compressed_bodies_are_refused_without_being_inflated(two_servers, tmp_path):
    host, _ = two_servers
    port = host.port
    policy = url_policy(tmp_path, allow_private=True)
    host.seen.clear()
    assert acquire(f"http://127.0.0.1:{port}/ok.png", policy).width == 20
    assert host.seen == ["identity"], "the fetch asks for an uncompressed body"
    for path in ("/bomb-gzip", "/bomb-chunked", "/zstd"):  # servers that ignore Accept-Encoding
        tracemalloc.start()
        try:
            with pytest.raises(ImageInputError, match="Content-Encoding") as info:
                acquire(f"http://127.0.0.1:{port}{path}", policy)
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
        assert info.value.status == 502, path
        assert peak < 2 * 1024 * 1024, f"{path}: {peak:,} bytes allocated for a 50 KB cap"


@pytest.mark.parametrize("host", [
    "::ffff:0:7f00:1", "::ffff:0:a00:1",  # IPv4-translated (::ffff:0:0:0/96) loopback, private
    "64:ff9b::a00:1", "64:ff9b::a9fe:a9fe",  # NAT64 well-known prefix: private, link-local (metadata)
    "64:ff9b:1::808:808", "64:ff9b:1:a00:100::",  # local-use NAT64 (64:ff9b:1::/48): refused outright
    "2002:a00:1::1", "2002:a9fe:a9fe::",  # 6to4 around private and link-local addresses
    "2001:0:a00:1::1",  # Teredo with a private server address
])  # fmt: skip
def test_ipv4_carried_in_ipv6_forms_are_refused(host):
    with pytest.raises(ImageInputError) as info:
        checked_address(host, 80, ImagePolicy(allow_urls=True), "image")
    assert info.value.status == 403


@pytest.mark.parametrize("host", ["8.8.8.8", "2606:4700::1111", "::ffff:8.8.8.8", "64:ff9b::808:808",
                                  "2002:808:808::1"])
def test_public_addresses_pass(host):
    assert checked_address(host, 80, ImagePolicy(allow_urls=True), "image")


def test_a_hanging_resolver_meets_its_own_deadline(monkeypatch):
    def hang(*args, **kwargs):
        time.sleep(3)
        raise socket.gaierror("too late")

    monkeypatch.setattr(socket, "getaddrinfo", hang)
    policy = ImagePolicy(allow_urls=True, dns_timeout_s=0.3)
    start = time.monotonic()
    with pytest.raises(ImageInputError, match="looking up 'images.example.com' took over 0.3 s") as info:
        checked_address("images.example.com", 80, policy, "image")
    assert info.value.status == 504 and time.monotonic() - start < 1.5
    whole = ImagePolicy(allow_urls=True, timeout_s=0.3)  # the fetch's own deadline is shorter than the DNS one
    with pytest.raises(ImageInputError, match="took over the fetch's time limit") as info:
        acquire("http://images.example.com/a.png", whole)
    assert info.value.status == 504 and time.monotonic() - start < 2.5


def test_dns_timeout_comes_from_the_environment(monkeypatch):
    monkeypatch.setenv("XTHINK_DNS_TIMEOUT", "1.5")
    assert ImagePolicy.from_env().dns_timeout_s == 1.5
    monkeypatch.setenv("XTHINK_DNS_TIMEOUT", "soon")
    with pytest.raises(ImageInputError, match="XTHINK_DNS_TIMEOUT"):
        ImagePolicy.from_env()


@pytest.mark.parametrize("url", ["http://127.0.0.1:abc/x.png", "http://" + "x" * 70 + ".example.com/x.png",
                                 "http://a..b/x.png"])
def test_malformed_hosts_and_ports_are_clear_400s(url, tmp_path):
    with pytest.raises(ImageInputError) as info:
        acquire(url, url_policy(tmp_path))
    assert info.value.status == 400


def test_allowed_hosts_may_be_private_and_redirects_keep_the_rules(two_servers, tmp_path, monkeypatch):
    port, other = (server.port for server in two_servers)
    monkeypatch.setenv("XTHINK_ALLOW_URLS", "1")
    monkeypatch.setenv("XTHINK_URL_ALLOW_HOSTS", f" 127.0.0.1:{port} , images.internal")
    policy = ImagePolicy.from_env(store_dir=tmp_path / "store")
    assert acquire(f"http://127.0.0.1:{port}/ok.png", policy).width == 20
    assert acquire(f"http://127.0.0.1:{port}/to-self", policy).width == 20
    with pytest.raises(ImageInputError) as info:  # allowed host -> private host not in the list
        acquire(f"http://127.0.0.1:{port}/to-other", policy)
    assert info.value.status == 403
    with pytest.raises(ImageInputError) as info:  # the same address on a port not in the list
        acquire(f"http://127.0.0.1:{other}/ok.png", policy)
    assert info.value.status == 403
    both = ImagePolicy.from_env(store_dir=tmp_path / "store", allow_hosts=parse_allow_hosts(
        f"127.0.0.1:{port},127.0.0.1:{other}"))
    assert acquire(f"http://127.0.0.1:{port}/to-other", both).width == 20


def test_allow_host_entries_are_parsed_and_checked():
    assert parse_allow_hosts("Images.Internal., 10.0.0.5:8080,[::1]:9000,fd00:0::1,,") == frozenset(
        {("images.internal", None), ("10.0.0.5", 8080), ("::1", 9000), ("fd00::1", None)})
    for bad in ("host:port", "a:1:2:x", "http://x", "h:70000", "[::1]x", "user@h"):
        with pytest.raises(ImageInputError, match="XTHINK_URL_ALLOW_HOSTS"):
            parse_allow_hosts(bad)
