"""Images from clients: the server-side request forgery and path rules, caps, and the content store."""

from __future__ import annotations

import base64
import io
import os

import pytest
from PIL import Image

from tests.image_host import ImageHost
from tools.images.acquire import acquire
from tools.images.address_check import checked_address
from tools.images.inputs import ImagePolicy, decode_base64
from tools.images.store import ImageInputError


def png_bytes(size=(20, 10), colour="red") -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, colour).save(buf, "PNG")
    return buf.getvalue()


@pytest.fixture
def policy(tmp_path):
    return ImagePolicy(allow_urls=True, allow_private=True, store_dir=tmp_path / "store", timeout_s=2.0,
                       max_bytes=50_000)


@pytest.fixture(scope="module")
def web():
    png = png_bytes()
    server = ImageHost({
        "/ok.png": (200, {"Content-Length": str(len(png))}, png, 0),
        "/to-file": (302, {"Location": "file:///etc/passwd"}, b"", 0),
        "/to-ftp": (302, {"Location": "ftp://example.com/x.png"}, b"", 0),
        "/to-ok": (301, {"Location": "/ok.png"}, b"", 0),
        "/loop": (302, {"Location": "/loop"}, b"", 0),
        "/big": (200, {"Content-Length": "999999"}, b"x" * 10, 0),
        "/big-chunked": (200, {}, b"x" * 60_000, 0),
        "/slow": (200, {}, png, 3),
        "/text": (200, {}, b"hello, not an image", 0),
    })
    yield server.base
    server.shutdown()


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost", "10.1.2.3", "192.168.0.9", "169.254.169.254", "::1",
                                  "100.64.0.1", "fc00::1", "2130706433", "0x7f.1", "127.1", "::ffff:127.0.0.1",
                                  "::127.0.0.1", "64:ff9b::7f00:1", "2002:7f00:1::", "2001:0:4136:e378:8000:63bf:80ff:fffe"])
def test_private_and_local_addresses_are_refused(host):
    with pytest.raises(ImageInputError) as info:
        checked_address(host, 80, ImagePolicy(allow_urls=True), "image")
    assert info.value.status == 403


def test_urls_are_off_unless_enabled(tmp_path):
    with pytest.raises(ImageInputError, match="XTHINK_ALLOW_URLS") as info:
        acquire("https://example.com/a.png", ImagePolicy(store_dir=tmp_path), "image")
    assert info.value.status == 403


def test_fetch_follows_checked_redirects_with_caps(web, policy):
    stored = acquire(f"{web}/ok.png", policy)
    assert (stored.width, stored.height) == (20, 10) and stored.path.read_bytes() == png_bytes()
    assert acquire(f"{web}/to-ok", policy).digest == stored.digest
    cases = {"/to-file": 400, "/to-ftp": 400, "/drip": 504, "/loop": 400, "/big": 413, "/big-chunked": 413, "/slow": 504, "/text": 400,
             "/missing": 502}
    for path, status in cases.items():
        with pytest.raises(ImageInputError) as info:
            acquire(f"{web}{path}", policy)
        assert info.value.status == status, path


def test_local_paths_stay_under_the_root(tmp_path, policy):
    root = tmp_path / "root"
    (root / "sub").mkdir(parents=True)
    (root / "sub" / "a.png").write_bytes(png_bytes())
    outside = tmp_path / "secret.png"
    outside.write_bytes(png_bytes(colour="blue"))
    os.symlink(outside, root / "link.png")
    os.symlink(root / "loop.png", root / "loop.png")
    rooted = ImagePolicy(image_root=root.resolve(), store_dir=tmp_path / "store")
    assert acquire("sub/a.png", rooted).width == 20
    assert acquire(str(root / "sub" / "a.png"), rooted).width == 20
    assert acquire(f"file://{root / 'sub' / 'a.png'}", rooted).width == 20
    for path, status in [("../secret.png", 403), (str(outside), 403), ("link.png", 403), ("sub/../../secret.png", 403),
                         ("nope.png", 404), ("loop.png", 400), ("a\x00.png", 400), ("x" * 5000, 400)]:
        with pytest.raises(ImageInputError) as info:
            acquire(path, rooted)
        assert info.value.status == status, path
    with pytest.raises(ImageInputError, match="XTHINK_IMAGE_ROOT"):
        acquire("sub/a.png", ImagePolicy(store_dir=tmp_path / "store"))


def test_data_urls_and_the_content_store(tmp_path):
    policy = ImagePolicy(store_dir=tmp_path / "store", max_bytes=10_000, max_pixels=5_000)
    url = "data:image/png;base64," + base64.b64encode(png_bytes()).decode()
    first, again = acquire(url, policy), acquire(url, policy)
    assert first.path == again.path and first.path.name == f"{first.digest}.png"
    assert len(list((tmp_path / "store").iterdir())) == 1, "the same bytes are stored once, no temp files left"
    bad = {
        "data:text/plain;base64,aGVsbG8=": 400,
        "data:image/png,rawdata": 400,
        "data:image/png;base64,%%%": 400,
        "data:image/png;base64," + "A" * 20_000: 413,
        "data:image/png;base64," + base64.b64encode(png_bytes((100, 100))).decode(): 413,  # 10,000 pixels
        "data:image/png;base64," + base64.b64encode(b"GIF89a-broken").decode(): 400,
        "gopher://example.com/x": 400,
    }
    for source, status in bad.items():
        with pytest.raises(ImageInputError) as info:
            acquire(source, policy)
        assert info.value.status == status, source[:40]
    assert decode_base64(base64.b64encode(b"abc").decode(), policy) == b"abc"
