"""Regions as small reasoners write them: repaired where the intent is clear, refused otherwise."""

from __future__ import annotations

import math

import pytest

from tools.boxes import MIN_REGION_PX, BoxError, compose, read_box


def test_a_valid_box_is_kept_as_is():
    fixed = read_box([0.1, 0.2, 0.6, 0.9], 1000, 800)
    assert fixed.box == (0.1, 0.2, 0.6, 0.9) and fixed.repairs == []


def test_swapped_corners_are_ordered():
    fixed = read_box([0.6, 0.9, 0.1, 0.2], 1000, 800)
    assert fixed.box == (0.1, 0.2, 0.6, 0.9) and fixed.repairs == ["corners swapped into [x0, y0, x1, y1] order"]


def test_values_slightly_outside_are_clipped_far_outside_refused():
    fixed = read_box([-0.02, 0.0, 1.03, 0.5], 1000, 800)
    assert fixed.box == (0.0, 0.0, 1.0, 0.5) and fixed.repairs == ["values clipped to [0, 1]"]
    with pytest.raises(BoxError, match="between 0 and 1"):
        read_box([-0.5, 0.0, 0.5, 0.5], 1000, 800)


def test_pixel_coordinates_are_converted():
    fixed = read_box([0, 0, 500, 400], 1000, 800)
    assert fixed.box == (0.0, 0.0, 0.5, 0.5) and "pixel coordinates" in fixed.repairs[0]
    fixed = read_box([100.5, 80, 600, 720.25], 1000, 800)
    assert fixed.box == pytest.approx((0.1005, 0.1, 0.6, 0.9003125))


def test_pixels_outside_the_image_and_ambiguous_mixes_are_refused():
    with pytest.raises(BoxError, match="neither fractions"):
        read_box([0, 0, 1500, 400], 1000, 800)
    with pytest.raises(BoxError, match="between 0 and 1"):
        read_box([0.2, 0.2, 1.5, 0.9], 1000, 800)


def test_tiny_and_degenerate_boxes_grow_around_their_centre():
    fixed = read_box([0, 0, 0.0005, 1], 1000, 800)  # a line: Qwen2-VL's processor refuses its aspect ratio
    x0, y0, x1, y1 = fixed.box
    assert (x1 - x0) * 1000 == pytest.approx(MIN_REGION_PX) and (y0, y1) == (0.0, 1.0)
    assert x0 == 0.0, "kept inside the image"
    point = read_box([0.5, 0.5, 0.5, 0.5], 7680, 4320).box
    assert (point[0] + point[2]) / 2 == pytest.approx(0.5) and (point[2] - point[0]) * 7680 == pytest.approx(32)
    small = read_box([0.1, 0.1, 0.2, 0.2], 40, 40).box  # 32 px of a 40 px image
    assert (small[2] - small[0]) * 40 == pytest.approx(32)


@pytest.mark.parametrize("value", [
    None, "0,0,1,1", [0, 0, 1], [0, 0, 1, 1, 1], [0, 0, "1", 1], [True, 0, 1, 1], [[0], 0, 1, 1],
    [math.nan, 0, 1, 1], [0, 0, math.inf, 1], {"x0": 0}, [1e308, 1e308, 1e308, 1e308],
])
def test_unreadable_regions_are_refused_with_a_message(value):
    with pytest.raises(BoxError) as error:
        read_box(value, 640, 480)
    assert "region" in str(error.value)


def test_compose_maps_a_box_inside_a_crop_to_the_original():
    assert compose((0.5, 0.0, 1.0, 0.5), (0.0, 0.0, 0.5, 0.5)) == (0.5, 0.0, 0.75, 0.25)
    assert compose((0.2, 0.2, 0.6, 0.6), (0.0, 0.0, 1.0, 1.0)) == pytest.approx((0.2, 0.2, 0.6, 0.6))
