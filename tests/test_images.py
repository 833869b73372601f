"""Every bad image is refused with a clear message; every odd-but-valid image is normalised to RGB."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from tools.images.pixels import ImageError, ImageStore, crop_region, load_image, validate_box


def _png(img: Image.Image, path) -> str:
    img.save(path)
    return str(path)


def test_missing_file(tmp_path):
    with pytest.raises(ImageError, match="does not exist"):
        load_image(tmp_path / "nope.png")


def test_paths_that_cannot_be_opened_are_image_errors(tmp_path):
    """A symlink loop, a name too long for the file system, a NUL byte, a path through a file: one clear
    ImageError each (a user's typo or a hostile request), never an OSError from deep inside."""
    (tmp_path / "loop").symlink_to(tmp_path / "loop")
    (tmp_path / "file").write_text("x")
    for path, words in [(tmp_path / "loop", "cannot be opened"), (tmp_path / ("a" * 300), "cannot be opened"),
                        (f"{tmp_path}/bad\0name.png", "cannot be opened"), (tmp_path / "file" / "x.png", "does not exist")]:
        with pytest.raises(ImageError, match=words):
            load_image(path)


def test_folder_is_not_an_image(tmp_path):
    with pytest.raises(ImageError, match="not a file"):
        load_image(tmp_path)


def test_text_file_is_not_an_image(tmp_path):
    path = tmp_path / "notes.png"
    path.write_text("hello, I am text")
    with pytest.raises(ImageError, match="not an image"):
        load_image(path)


def test_empty_file(tmp_path):
    path = tmp_path / "empty.jpg"
    path.write_bytes(b"")
    with pytest.raises(ImageError, match="empty"):
        load_image(path)


@pytest.mark.parametrize("fmt", ["PNG", "JPEG"])
def test_truncated_image(tmp_path, fmt):
    buf = io.BytesIO()
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (64, 64, 3), dtype=np.uint8)).save(buf, fmt)
    path = tmp_path / f"cut.{fmt.lower()}"
    path.write_bytes(buf.getvalue()[: len(buf.getvalue()) // 2])
    with pytest.raises(ImageError, match="truncated or corrupt"):
        load_image(path)


def test_corrupt_body(tmp_path):
    buf = io.BytesIO()
    Image.new("RGB", (32, 32), "red").save(buf, "PNG")
    data = bytearray(buf.getvalue())
    data[60:80] = b"\x00" * 20
    path = tmp_path / "bad.png"
    path.write_bytes(bytes(data))
    with pytest.raises(ImageError):
        load_image(path)


def test_zero_size_header(tmp_path):
    # A PNG whose header claims 0x0: build the IHDR by hand.
    import struct
    import zlib

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    png = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 0, 0, 8, 2, 0, 0, 0)) + chunk(b"IEND", b"")
    path = tmp_path / "zero.png"
    path.write_bytes(png)
    with pytest.raises(ImageError):
        load_image(path)


def test_pixel_limit_refuses_bombs(tmp_path):
    path = _png(Image.new("L", (2000, 2000)), tmp_path / "big.png")
    with pytest.raises(ImageError, match="over the limit"):
        load_image(path, max_pixels=1_000_000)


def test_palette_with_transparency(tmp_path):
    img = Image.new("P", (8, 8), 0)
    img.putpalette([255, 0, 0] + [0, 0, 255] * 255)
    img.info["transparency"] = 0
    out = load_image(_png(img, tmp_path / "p.png"))
    assert out.mode == "RGB" and out.getpixel((0, 0)) == (255, 255, 255)


def test_rgba_over_white(tmp_path):
    img = Image.new("RGBA", (4, 4), (255, 0, 0, 0))
    out = load_image(_png(img, tmp_path / "a.png"))
    assert out.mode == "RGB" and out.getpixel((1, 1)) == (255, 255, 255)


def test_cmyk(tmp_path):
    path = tmp_path / "c.jpg"
    Image.new("CMYK", (8, 8), (0, 255, 255, 0)).save(path)
    out = load_image(path)
    assert out.mode == "RGB" and out.getpixel((4, 4))[0] > 200


def test_sixteen_bit_is_scaled_not_clipped(tmp_path):
    arr = np.full((8, 8), 32768, dtype=np.uint16)
    path = _png(Image.fromarray(arr), tmp_path / "deep.png")
    out = load_image(path)
    assert out.mode == "RGB" and 120 <= out.getpixel((0, 0))[0] <= 135


def test_animated_gif_takes_the_first_frame(tmp_path):
    frames = [Image.new("RGB", (8, 8), c) for c in ("red", "blue")]
    path = tmp_path / "anim.gif"
    frames[0].save(path, save_all=True, append_images=frames[1:], duration=50)
    out = load_image(path)
    assert out.mode == "RGB" and out.getpixel((2, 2))[0] > 200


def test_grayscale_becomes_rgb(tmp_path):
    assert load_image(_png(Image.new("L", (4, 4), 7), tmp_path / "g.png")).getpixel((0, 0)) == (7, 7, 7)


def test_store_ids_and_refs(tmp_path):
    store = ImageStore()
    a = store.add(_png(Image.new("RGB", (10, 20)), tmp_path / "a.png"))
    b = store.add(_png(Image.new("RGB", (30, 40)), tmp_path / "b.png"))
    assert (a.id, b.id, b.width, b.height) == ("image_1", "image_2", 30, 40)
    with pytest.raises(KeyError, match="known: image_1, image_2"):
        store.get("image_3")


def test_crop_enlarges_the_region():
    img = Image.new("RGB", (200, 100), "white")
    img.paste((255, 0, 0), (100, 0, 200, 100))
    crop = crop_region(img, (0.5, 0.0, 1.0, 1.0))
    assert max(crop.size) == 384 and crop.getpixel((10, 10)) == (255, 0, 0)


@pytest.mark.parametrize("box", [(0.5, 0.1, 0.4, 0.9), (0, 0, 1.2, 1), (0, 0, 1), ("a", 0, 1, 1)])
def test_bad_boxes(box):
    with pytest.raises(ValueError):
        validate_box(box)


def test_images_beyond_pils_bomb_limit_load_under_our_cap(tmp_path):
    """8K and beyond: PIL warns at 89M pixels and refuses at 179M; our own cap (--max-pixels) decides."""
    path = tmp_path / "huge.png"
    Image.new("RGB", (11000, 9000), "white").save(path)  # 99M pixels, over PIL's warning limit
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        img = load_image(path, max_pixels=100_000_000)
    assert img.size == (11000, 9000)
    with pytest.raises(ImageError, match="over the limit"):
        load_image(path, max_pixels=50_000_000)


def test_extreme_aspect_ratios_are_padded_and_small_crops_enlarged():
    from tools.images.pixels import MAX_ASPECT, MIN_CROP_SIDE, fit_aspect

    strip = Image.new("RGB", (4000, 3), "red")
    padded = fit_aspect(strip)
    assert padded.size == (4000, round(4000 / MAX_ASPECT)) and padded.getpixel((2000, 199)) == (255, 0, 0)
    assert fit_aspect(Image.new("RGB", (300, 200))).size == (300, 200), "ordinary images are untouched"
    crop = crop_region(Image.new("RGB", (7680, 4320)), (0.5, 0.5, 0.51, 0.51))
    assert max(crop.size) >= MIN_CROP_SIDE
