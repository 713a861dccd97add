"""Random-dot stereograms with exact disparity and the stereo folder layout with its errors."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from convzoo.data.base import load_dataset
from convzoo.data.stereo import random_dot_stereogram


def test_every_unoccluded_left_pixel_is_at_x_minus_d_in_the_right_image():
    rng = np.random.default_rng(0)
    for _ in range(4):
        left, right, disparity = random_dot_stereogram(rng, 20, 40, 12)
        d = disparity.astype(int)
        assert disparity.min() >= 1 and disparity.max() < 12 and np.array_equal(d, disparity)
        matched = 0
        for y in range(20):
            for x in range(40):
                target = x - d[y, x]
                if target < 0:
                    continue
                # occluded in the right view: a nearer left pixel of the same row lands on the same place
                hidden = any(d[y, x2] > d[y, x] and x2 - d[y, x2] == target for x2 in range(40))
                if not hidden:
                    assert np.array_equal(right[:, y, target], left[:, y, x]), (y, x)
                    matched += 1
        assert matched > 0.7 * 20 * 40


def test_random_dots_are_seeded_and_standardised():
    a = load_dataset("random-dots", "train", length=4, height=16, width=24, max_disparity=8)
    b = load_dataset("random-dots", "train", length=4, height=16, width=24, max_disparity=8)
    c = load_dataset("random-dots", "test", length=4, height=16, width=24, max_disparity=8)
    assert a.left.shape == (4, 3, 16, 24) and a.disparity.shape == (4, 16, 24)
    assert a.left.equal(b.left) and not a.left.equal(c.left)
    assert abs(float(a.left.mean())) < 0.1 and abs(float(a.left.std()) - 1) < 0.1
    assert a.info.extra["max_disparity"] == 8
    with pytest.raises(ValueError, match="max_disparity must be"):
        load_dataset("random-dots", "train", width=16, max_disparity=20)


def _pair(folder, name, size=(12, 16), disparity_format="npy"):
    h, w = size
    for part in ("left", "right"):
        (folder / part).mkdir(parents=True, exist_ok=True)
        Image.fromarray(np.full((h, w, 3), 100, np.uint8)).save(folder / part / f"{name}.png")
    (folder / "disparity").mkdir(parents=True, exist_ok=True)
    if disparity_format == "npy":
        np.save(folder / "disparity" / f"{name}.npy", np.full((h, w), 2.5, np.float32))
    else:
        raw = np.full((h, w), 640, np.uint16)  # 2.5 px × 256
        raw[0, 0] = 0  # unknown
        Image.fromarray(raw).save(folder / "disparity" / f"{name}.png")


def test_stereo_folder_reads_npy_and_kitti_png(tmp_path):
    _pair(tmp_path / "train", "a")
    _pair(tmp_path / "train", "b", disparity_format="png")
    data = load_dataset("stereo-folder", "train", tmp_path)
    assert len(data) == 2 and data.left.shape == (2, 3, 12, 16)
    assert float(data.disparity[0, 1, 1]) == 2.5 and float(data.disparity[1, 1, 1]) == 2.5
    assert np.isnan(float(data.disparity[1, 0, 0])) and not np.isnan(float(data.disparity[0, 0, 0]))


def test_stereo_folder_errors_name_the_problem(tmp_path):
    with pytest.raises(ValueError, match="needs a data folder"):
        load_dataset("stereo-folder", "train")
    with pytest.raises(FileNotFoundError, match=r"missing the folder .*left"):
        load_dataset("stereo-folder", "train", tmp_path)
    _pair(tmp_path / "train", "a")
    _pair(tmp_path / "train", "b")
    (tmp_path / "train" / "right" / "b.png").unlink()
    with pytest.raises(ValueError, match=r"right' lacks the files of b \(mismatched files\)"):
        load_dataset("stereo-folder", "train", tmp_path)
    _pair(tmp_path / "train", "b", size=(10, 16))
    with pytest.raises(ValueError, match="every pair of a split must be the same size"):
        load_dataset("stereo-folder", "train", tmp_path)
