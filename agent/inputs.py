"""The first node of every regime graph: check a run's input, wherever it came from.

From the Python API the input is already checked (the node changes nothing). From JSON (LangGraph
Server, Studio) the question and options are checked here and each image, given as a path, URL, data URL
or `{"path"|"url": ...}` object, goes through the server's image rules (tools/images/acquire.py) into the
content store; state then holds `ImageInfo`s naming stored files.
"""

from __future__ import annotations

from typing import Any

from typing_extensions import TypedDict

from agent.settings import InputError, validate_question
from agent.state import AgentState
from agent.trace import ImageInfo
from tools.images.acquire import acquire
from tools.images.inputs import ImagePolicy
from tools.images.store import ImageInputError

MAX_IMAGES = 16


class RegimeInput(TypedDict, total=False):
    """What a client sends a regime graph (and what LangGraph Studio's input form shows)."""

    question: str
    options: list[str]
    images: list[Any]  # paths, URLs, data URLs, {"path" | "url": ...}, or ImageInfo from Python
    request: str | None  # extract mode: a precomputed "contents to observe" request


def check_input(state: AgentState) -> dict:
    """Normalise question, options and images; raise InputError naming what is wrong."""
    images = state.get("images") or []
    if images and all(isinstance(image, ImageInfo) for image in images):
        return {}
    question, options = validate_question(state.get("question", ""), state.get("options"), "iterative")
    if not images:
        raise InputError("no image was given: pass `images`, a list of image paths, URLs or data URLs")
    if len(images) > MAX_IMAGES:
        raise InputError(f"{len(images)} images were given; at most {MAX_IMAGES}")
    policy = ImagePolicy.from_env()
    infos = [_image_info(entry, i, policy) for i, entry in enumerate(images, start=1)]
    return {"question": question, "options": options, "images": infos}


def _image_info(entry, number: int, policy: ImagePolicy) -> ImageInfo:
    if isinstance(entry, ImageInfo):
        return entry
    source = entry.get("url") or entry.get("path") if isinstance(entry, dict) else entry
    try:
        stored = acquire(source, policy, label=f"image {number}")
    except ImageInputError as exc:
        raise InputError(str(exc)) from None
    return ImageInfo(id=f"image_{number}", path=str(stored.path), width=stored.width, height=stored.height)
