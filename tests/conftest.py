"""Session fixtures: tiny random-weight models built once, test images, offline hub."""

from __future__ import annotations

import os

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from pathlib import Path  # noqa: E402

import pytest  # noqa: E402
from PIL import Image, ImageDraw  # noqa: E402


@pytest.fixture(scope="session")
def tiny(tmp_path_factory):
    from tools.backends.loading import quiet_transformers
    from tools.tiny.models import PERCEIVER_BUILDERS, build_all

    quiet_transformers()
    return build_all(tmp_path_factory.mktemp("tiny"), tuple(PERCEIVER_BUILDERS))


@pytest.fixture(scope="session")
def image_path(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("img") / "square.png"
    img = Image.new("RGB", (120, 80), "white")
    ImageDraw.Draw(img).rectangle((10, 10, 60, 60), fill="red")
    img.save(path)
    return path


@pytest.fixture(scope="session")
def second_image(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("img2") / "blue.png"
    Image.new("RGB", (64, 96), "blue").save(path)
    return path
