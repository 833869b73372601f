"""The HTTP perceiver's data-URL cache is bounded in bytes, not entries: a few large images must not pin
gigabytes of base64."""

from __future__ import annotations

import pytest
from PIL import Image

from tools.backends.data_urls import DataUrlCache, data_url


def noise(seed: int, size=(120, 120)) -> Image.Image:
    """An image that PNG cannot squeeze: its data URL is about 4/3 of its pixel bytes."""
    return Image.effect_noise(size, 80 + seed).convert("RGB")


def test_the_cache_keeps_the_most_recent_urls_within_its_bytes():
    images = [noise(i) for i in range(4)]
    one = max(len(data_url(image)) for image in images)
    cache = DataUrlCache(max_mb=2.5 * one / (1024 * 1024))
    first = cache.get(images[0])
    assert cache.get(images[0]) is first, "a repeat is the same string, encoded once"
    for image in images[1:]:
        cache.get(image)
        assert cache.nbytes <= cache.max_bytes
    assert cache.get(images[3]) is cache.get(images[3]) and cache.get(images[0]) is not first, "oldest went first"


def test_an_image_larger_than_the_bound_is_sent_not_kept():
    cache = DataUrlCache(max_mb=0.01)
    url = cache.get(noise(0))
    assert url.startswith("data:image/png;base64,") and cache.nbytes == 0


def test_the_bound_comes_from_the_environment(monkeypatch):
    monkeypatch.setenv("XTHINK_DATA_URL_CACHE_MB", "1.5")
    assert DataUrlCache().max_bytes == int(1.5 * 1024 * 1024)
    monkeypatch.delenv("XTHINK_DATA_URL_CACHE_MB")
    assert DataUrlCache().max_bytes == 256 * 1024 * 1024
    monkeypatch.setenv("XTHINK_DATA_URL_CACHE_MB", "lots")
    with pytest.raises(ValueError, match="XTHINK_DATA_URL_CACHE_MB"):
        DataUrlCache()


def test_staged_inline_images_stay_within_their_bytes():
    from agent.assistant_turns import _Staged

    staged = _Staged(max_bytes=2500)
    digests = [staged.put(bytes([i]) * 1000) for i in range(3)]
    assert staged.put(bytes([1]) * 1000) == digests[1], "sending an image again makes it the most recent"
    staged.put(bytes([9]) * 1000)
    assert [staged.get(d) is not None for d in digests] == [False, True, False]
