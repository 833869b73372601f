"""`xthink cache`: showing the caches and pruning the image store, through the installed command."""

from __future__ import annotations

import io
import json
import os
import subprocess
import time

import pytest
from PIL import Image

from tools.images.store import ContentStore


def png_bytes(colour) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (32, 32), colour).save(buf, "PNG")
    return buf.getvalue()


@pytest.fixture
def cache(tmp_path):
    """A cache folder with three stored images (used 40, 10 and 0 days ago), a foreign file and a checkpoint."""
    root = tmp_path / "cache"
    store = ContentStore(root / "images")
    stored = [store.put(png_bytes(c)) for c in ("red", "green", "blue")]
    for image, days in zip(stored, (40, 10, 0)):
        when = time.time() - days * 86400
        os.utime(image.path, (when, when))
    (root / "images" / "README.txt").write_text("not the store's")
    checkpoint = root / "converted" / "markendo--llava-extract-qwen3-0.6B"
    checkpoint.mkdir(parents=True)
    (checkpoint / "model.safetensors").write_bytes(b"\0" * 3000)
    (checkpoint / "conversion.json").write_text(json.dumps({"source": "markendo/llava-extract-qwen3-0.6B"}))
    (root / "converted" / "half-done").mkdir()
    return root, stored


def xthink(root, *args):
    env = {**os.environ, "XTHINK_CACHE": str(root)}
    env.pop("XTHINK_IMAGE_STORE", None)
    return subprocess.run(["xthink", "cache", *args], capture_output=True, text=True, env=env, timeout=120)


def test_cache_shows_the_store_and_converted_checkpoints(cache):
    root, stored = cache
    shown = xthink(root, "--json")
    assert shown.returncode == 0, shown.stderr
    summary = json.loads(shown.stdout)
    store = summary["image_store"]
    assert (store["path"], store["files"]) == (str(root / "images"), 3)
    assert (store["max_mb"], store["max_age_days"]) == (1024, 30)
    assert store["bytes"] == sum(s.path.stat().st_size for s in stored)
    assert store["least_recently_used"].endswith("(40.0 days ago)")
    converted = summary["converted"]
    assert [(c["name"], c["source"]) for c in converted["checkpoints"]] == [
        ("half-done", None), ("markendo--llava-extract-qwen3-0.6B", "markendo/llava-extract-qwen3-0.6B")]
    assert converted["bytes"] >= 3000
    text = xthink(root)
    assert text.returncode == 0 and "3 images" in text.stdout and "2 checkpoints" in text.stdout


def test_prune_by_age_then_size_then_all(cache):
    root, (old, middle, new) = cache
    pruned = xthink(root, "prune")  # the configured bound: 30 days
    assert pruned.returncode == 0 and pruned.stdout.startswith("removed 1 images")
    assert not old.path.exists() and middle.path.exists()
    assert xthink(root, "prune", "--max-age-days", "5").returncode == 0 and not middle.path.exists()
    assert xthink(root, "prune", "--max-mb", "0").returncode == 0 and new.path.exists(), "used just now: kept"
    assert xthink(root, "prune", "--all").returncode == 0 and not new.path.exists()
    assert (root / "images" / "README.txt").exists() and (root / "converted" / "half-done").is_dir()


@pytest.mark.parametrize("args, message", [
    (["prune", "--max-mb", "lots"], "--max-mb must be a number >= 0, not 'lots'"),
    (["prune", "--max-age-days", "-1"], "--max-age-days must be a number >= 0"),
    (["prune", "--keep-recent-minutes", "nan"], "--keep-recent-minutes must be a number >= 0"),
])  # fmt: skip
def test_bad_values_are_one_line_exit_2(cache, args, message):
    result = xthink(cache[0], *args)
    assert result.returncode == 2 and message in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert cache[1][0].path.exists()


@pytest.mark.parametrize("command, variable, value", [
    (["cache"], "XTHINK_STORE_MAX_MB", "big"),
    (["serve", "--port", "1"], "XTHINK_URL_ALLOW_HOSTS", "images internal"),
    (["chat"], "XTHINK_DNS_TIMEOUT", "-1"),
])  # fmt: skip
def test_a_bad_image_setting_is_one_line_exit_2_before_models_load(tmp_path, command, variable, value):
    env = {**os.environ, "XTHINK_CACHE": str(tmp_path), variable: value, "XTHINK_REASONER": "/nonexistent"}
    result = subprocess.run(["xthink", *command], capture_output=True, text=True, env=env, timeout=120, input="")
    assert result.returncode == 2 and variable in result.stderr, result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and "server's" not in result.stderr
