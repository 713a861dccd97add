"""The procedural shapes-segmentation set: exact masks, fixed seed, the painted image follows the mask."""

from __future__ import annotations

import math

import numpy as np
import pytest

from convzoo.data.base import load_dataset
from convzoo.data.shapes import CLASS_NAMES, render_shapes, shape_mask


def test_an_axis_aligned_square_covers_exactly_its_pixels():
    # half diagonal 8·√2 → half side 8; centre on a pixel corner: exactly the 16 × 16 block
    mask = shape_mask(2, 20.0, 12.0, 8 * math.sqrt(2), 0.0, 40)
    expected = np.zeros((40, 40), dtype=bool)
    expected[4:20, 12:28] = True
    assert np.array_equal(mask, expected)


def test_disc_and_triangle_membership_match_a_pixel_loop():
    cx, cy, r, angle = 13.3, 17.8, 9.1, 0.7
    disc, triangle = shape_mask(1, cx, cy, r, 0.0, 32), shape_mask(3, cx, cy, r, angle, 32)
    vertices = [(cx + r * math.cos(angle + math.pi + 2 * math.pi * k / 3),
                 cy + r * math.sin(angle + math.pi + 2 * math.pi * k / 3)) for k in range(3)]  # fmt: skip

    def inside_triangle(px, py):  # same sign of the three edge cross products
        signs = []
        for (ax, ay), (bx, by) in zip(vertices, vertices[1:] + vertices[:1], strict=True):
            signs.append((bx - ax) * (py - ay) - (by - ay) * (px - ax))
        return all(s >= -1e-9 for s in signs) or all(s <= 1e-9 for s in signs)

    for y in range(32):
        for x in range(32):
            px, py = x + 0.5, y + 0.5
            assert disc[y, x] == ((px - cx) ** 2 + (py - cy) ** 2 <= r * r)
            assert triangle[y, x] == inside_triangle(px, py), (y, x)
    assert abs(triangle.sum() - 3 * math.sqrt(3) / 4 * r * r) < 3 * r  # area within a perimeter's worth


def test_the_set_is_seeded_split_apart_and_covers_every_class():
    a, la = render_shapes(6, 32, 7)
    b, lb = render_shapes(6, 32, 7)
    c, _ = render_shapes(6, 32, 8)
    assert np.array_equal(a, b) and np.array_equal(la, lb) and not np.array_equal(a, c)
    assert a.dtype == np.float32 and a.min() >= 0 and a.max() <= 1
    train = load_dataset("shapes", "train", length=40, size=32)
    test = load_dataset("shapes", "test", length=40, size=32)
    assert train.images.shape == (40, 3, 32, 32) and train.masks.shape == (40, 32, 32)
    assert set(train.masks.unique().tolist()) == set(range(len(CLASS_NAMES)))
    assert not np.array_equal(train.masks.numpy(), test.masks.numpy())
    assert train.info.num_classes == 4 and train.info.extra["ignore_index"] == 255


def test_shape_pixels_are_painted_from_the_mask():
    images, labels = render_shapes(12, 32, 3)
    for image, label in zip(images, labels, strict=True):
        # a pixel's colour changes between label regions far more often than inside one: the mask is the paint
        horizontal_edges = label[:, 1:] != label[:, :-1]
        jumps = np.abs(image[:, :, 1:] - image[:, :, :-1]).sum(0)
        if horizontal_edges.any():
            assert jumps[horizontal_edges].mean() > 2 * jumps[~horizontal_edges].mean()


def test_bad_arguments():
    with pytest.raises(ValueError, match="takes no data folder"):
        load_dataset("shapes", "train", "/tmp")
    with pytest.raises(ValueError, match="split must be one of"):
        load_dataset("shapes", "val")
    with pytest.raises(ValueError, match="kind must be 1"):
        shape_mask(4, 1, 1, 1, 0, 8)
