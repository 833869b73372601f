"""The content store's bound: least recently used out first, recent files kept, foreign files never touched."""

from __future__ import annotations

import io
import os
import time

import pytest
from PIL import Image

from tools.images.inputs import ImagePolicy
from tools.images.store import EVERYTHING, MB, ContentStore, ImageInputError, StoreBound


def png_bytes(colour, size=(64, 64)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, colour).save(buf, "PNG")
    return buf.getvalue()


def age(path, seconds: float) -> None:
    """Set a file's last use `seconds` ago."""
    when = time.time() - seconds
    os.utime(path, (when, when))


def test_puts_keep_the_store_under_its_size_least_recently_used_out_first(tmp_path):
    images = [png_bytes(c) for c in ("red", "green", "blue", "white")]
    bound = StoreBound(max_bytes=3 * max(map(len, images)), max_age_s=None, keep_recent_s=60)
    store = ContentStore(tmp_path / "store", bound=bound)
    red, green, blue = (store.put(b) for b in images[:3])
    age(red.path, 300)
    age(green.path, 200)
    age(blue.path, 100)
    assert store.find(red.digest) is not None, "a lookup is a use: red is now the most recent"
    white = store.put(images[3])
    assert {f.path for f in store.files()} == {red.path, blue.path, white.path}, "green was least recently used"


def test_files_used_within_the_grace_period_are_kept(tmp_path):
    store = ContentStore(tmp_path, bound=StoreBound(max_bytes=1, max_age_s=None, keep_recent_s=3600))
    first, second = store.put(png_bytes("red")), store.put(png_bytes("green"))
    assert first.path.exists() and second.path.exists(), "over the bound, but both were just used"
    age(first.path, 7200)
    store.touch([str(second.path), "/etc/passwd", str(tmp_path / "notes.txt")])
    report = store.prune()
    assert (report.removed, report.kept) == (1, 1) and not first.path.exists() and second.path.exists()


def test_age_bound_and_prune_everything(tmp_path):
    store = ContentStore(tmp_path, bound=StoreBound(max_bytes=None, max_age_s=86400, keep_recent_s=0))
    old, new = store.put(png_bytes("red")), store.put(png_bytes("green"))
    age(old.path, 2 * 86400)
    assert store.prune().removed == 1 and not old.path.exists() and new.path.exists()
    assert store.prune(EVERYTHING).removed == 1 and store.files() == []


def test_prune_removes_only_what_the_store_wrote(tmp_path):
    root = tmp_path / "store"
    store = ContentStore(root, bound=EVERYTHING)
    mine = store.put(png_bytes("red"))
    outside = tmp_path / "precious.png"
    outside.write_bytes(b"keep me")
    foreign = {
        "notes.txt": b"x", "A" * 64 + ".png": b"x", "0" * 63 + ".png": b"x", "0" * 64 + ".png.bak": b"x",
        "tmpabcdefgh.part": b"x", "xthink-abc.part": b"x",
    }  # fmt: skip
    for name, data in foreign.items():
        (root / name).write_bytes(data)
        age(root / name, 10 * 86400)
    os.symlink(outside, root / ("1" * 64 + ".png"))
    (root / ("2" * 64 + ".png")).mkdir()
    stale, fresh = root / "xthink-abcd1234.part", root / "xthink-efgh5678.part"  # the store's own temporaries
    stale.write_bytes(b"half")
    fresh.write_bytes(b"half")
    age(stale, 2 * 86400)
    store.prune()
    assert not mine.path.exists() and not stale.exists() and fresh.exists()
    assert all((root / name).exists() for name in foreign) and outside.read_bytes() == b"keep me"
    assert (root / ("1" * 64 + ".png")).is_symlink() and (root / ("2" * 64 + ".png")).is_dir()


def test_the_bound_comes_from_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("XTHINK_STORE_MAX_MB", "0.5")
    monkeypatch.setenv("XTHINK_STORE_MAX_AGE_DAYS", "off")
    bound = ImagePolicy.from_env(store_dir=tmp_path).store.bound
    assert (bound.max_bytes, bound.max_age_s) == (MB // 2, None)
    monkeypatch.setenv("XTHINK_STORE_MAX_MB", "-3")
    with pytest.raises(ImageInputError, match="XTHINK_STORE_MAX_MB"):
        ImagePolicy.from_env()
    assert ImagePolicy().store.bound == StoreBound(), "bounded by default: 1024 MB, 30 days"


def test_a_conversation_keeps_its_images_and_names_a_pruned_one(monkeypatch, tmp_path):
    from agent.assistant_turns import _store_images
    from agent.trace import ImageInfo

    monkeypatch.setenv("XTHINK_IMAGE_STORE", str(tmp_path / "store"))
    store = ImagePolicy.from_env().store
    kept, lost = store.put(png_bytes("red")), store.put(png_bytes("green"))
    age(kept.path, 7200)
    images = [ImageInfo(id=f"image_{i}", path=str(s.path), width=64, height=64) for i, s in enumerate([kept, lost], 1)]
    _store_images([], images[:1])
    assert time.time() - kept.path.stat().st_mtime < 60, "each turn marks the thread's images as used"
    lost.path.unlink()
    with pytest.raises(ImageInputError, match="image_2 of this conversation is no longer stored") as info:
        _store_images([], images)
    assert str(tmp_path) not in str(info.value), "no server path in the message"


def test_a_resumed_run_names_a_pruned_image_without_its_path(tmp_path):
    """A run resumed long after an interrupt may find its image pruned: the error names the id, not the path."""
    from agent.context import live_context
    from agent.settings import AskOptions
    from agent.state import AgentContext
    from agent.trace import ImageInfo
    from tools.images.pixels import ImageError

    store = ContentStore(tmp_path / "store")
    gone = store.put(png_bytes("blue"))
    gone.path.unlink()

    class Runtime:
        context = AgentContext.build(None, None, AskOptions())

    state = {"images": [ImageInfo(id="image_1", path=str(gone.path), width=64, height=64)]}
    with pytest.raises(ImageError, match="image_1 of this conversation is no longer stored") as info:
        live_context(Runtime(), state)
    assert str(tmp_path) not in str(info.value)
