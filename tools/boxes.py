"""Read a region the reasoner wrote, repairing it where its intent is unambiguous.

The contract is a normalised `[x0, y0, x1, y1]` box (fractions of the image's width and height). Small
reasoners get it wrong in a few predictable ways; each repair below keeps what the box clearly meant
and is reported back (in the trace step and in the tool reply) so the reasoner can learn the contract:

- pixel coordinates (some value above 1, each value above 1 or a whole number, all within the image's
  size) are divided by the size; a mix such as [0.2, 0.2, 1.5, 0.9] is ambiguous and refused;
- values slightly outside [0, 1] (by at most `CLIP_SLACK`) are clipped;
- swapped corners (x0 > x1 or y0 > y1) are put in order;
- a box smaller than `MIN_REGION_PX` on a side (a line, a point) is grown around its centre.

Anything else (not four numbers, NaN, values far outside the image) is refused with a message that
says what a valid region looks like; a refused region costs the call, never the run.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

CLIP_SLACK = 0.05  # how far outside [0, 1] a value may stray and still be read as a fraction
MIN_REGION_PX = 32  # the smallest side a region is cropped with, in original pixels

Box = tuple[float, float, float, float]


class BoxError(ValueError):
    """A region that cannot be read as a box; the message is written for the reasoner."""


@dataclass(frozen=True)
class RepairedBox:
    box: Box
    repairs: list[str] = field(default_factory=list)


def read_box(value, width: int, height: int) -> RepairedBox:
    """A valid normalised box for an image of `width` x `height` pixels, with the repairs that made it."""
    numbers = _four_numbers(value)
    repairs: list[str] = []
    if max(numbers) > 1 + CLIP_SLACK and all(v > 1 or v == int(v) for v in numbers):
        numbers = _from_pixels(numbers, width, height)
        repairs.append(f"pixel coordinates converted to fractions of the {width}x{height} image")
    if any(v < 0 or v > 1 for v in numbers):
        if any(v < -CLIP_SLACK or v > 1 + CLIP_SLACK for v in numbers):
            raise BoxError("region values must be fractions between 0 and 1 of the image's width and height")
        numbers = [min(max(v, 0.0), 1.0) for v in numbers]
        repairs.append("values clipped to [0, 1]")
    x0, y0, x1, y1 = numbers
    if x0 > x1 or y0 > y1:
        x0, x1, y0, y1 = min(x0, x1), max(x0, x1), min(y0, y1), max(y0, y1)
        repairs.append("corners swapped into [x0, y0, x1, y1] order")
    (x0, x1), grown_x = _grow(x0, x1, width)
    (y0, y1), grown_y = _grow(y0, y1, height)
    if grown_x or grown_y:
        repairs.append(f"grown around its centre to at least {MIN_REGION_PX} px a side")
    return RepairedBox((x0, y0, x1, y1), repairs)


def _four_numbers(value) -> list[float]:
    if not isinstance(value, (list, tuple)) or len(value) != 4:
        raise BoxError("region must be a list of four numbers [x0, y0, x1, y1]")
    if any(isinstance(v, bool) or not isinstance(v, (int, float)) for v in value):
        raise BoxError("region must be a list of four numbers [x0, y0, x1, y1]")
    numbers = [float(v) for v in value]
    if not all(math.isfinite(v) for v in numbers):
        raise BoxError("region values must be finite numbers")
    return numbers


def _from_pixels(numbers: list[float], width: int, height: int) -> list[float]:
    x0, y0, x1, y1 = numbers
    if min(numbers) < 0 or max(x0, x1) > width or max(y0, y1) > height:
        raise BoxError(
            f"region {_show(numbers)} is neither fractions between 0 and 1 nor pixels within the "
            f"{width}x{height} image"
        )
    return [x0 / width, y0 / height, x1 / width, y1 / height]


def _grow(low: float, high: float, size: int) -> tuple[tuple[float, float], bool]:
    """Widen [low, high] around its centre to MIN_REGION_PX pixels (or the whole side), kept inside [0, 1]."""
    need = min(MIN_REGION_PX / max(size, 1), 1.0)
    if high - low >= need - 1e-9:
        return (low, high), False
    centre = (low + high) / 2
    low = min(max(centre - need / 2, 0.0), 1.0 - need)
    return (low, low + need), True


def _show(numbers: list[float]) -> str:
    return "[" + ", ".join(f"{v:g}" for v in numbers) + "]"


def compose(outer: Box, inner: Box) -> Box:
    """`inner` (fractions of the crop `outer`) in the coordinates of the image `outer` was cut from."""
    ox0, oy0, ox1, oy1 = outer
    w, h = ox1 - ox0, oy1 - oy0
    x0, y0, x1, y1 = inner
    return (ox0 + x0 * w, oy0 + y0 * h, ox0 + x1 * w, oy0 + y1 * h)
