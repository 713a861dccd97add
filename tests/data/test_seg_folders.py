"""PASCAL VOC and ADE20K folder layouts: labels kept exactly, ADE20K's shift to the ignore label, clear errors."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from convzoo.data.base import load_dataset
from convzoo.data.dense import colour_mask, palette


def _voc(root, names, split="train"):
    (root / "JPEGImages").mkdir(parents=True, exist_ok=True)
    (root / "SegmentationClass").mkdir(parents=True, exist_ok=True)
    (root / "ImageSets" / "Segmentation").mkdir(parents=True, exist_ok=True)
    for i, name in enumerate(names):
        Image.fromarray(np.full((20, 30, 3), 50 * i, np.uint8)).save(root / "JPEGImages" / f"{name}.jpg")
        labels = np.zeros((20, 30), np.uint8)
        labels[5:15, 10:20] = 15  # person
        labels[5, 10:20] = 255  # boundary
        mask = Image.fromarray(labels, mode="P")
        mask.putpalette(palette(256).flatten().tolist())
        mask.save(root / "SegmentationClass" / f"{name}.png")
    (root / "ImageSets" / "Segmentation" / f"{split}.txt").write_text("\n".join(names) + "\n")


def test_voc_layout_keeps_labels_and_the_boundary(tmp_path):
    _voc(tmp_path, ["2007_000001", "2007_000002"])
    data = load_dataset("voc", "train", tmp_path, size=30)
    image, mask = data[0]
    assert image.shape == (3, 30, 30) and mask.dtype.is_floating_point is False
    assert set(mask.unique().tolist()) == {0, 15, 255}
    assert data.info.num_classes == 21 and data.info.class_names[15] == "person"


def test_voc_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"missing the list .*val.txt"):
        _voc(tmp_path, ["a"]) or load_dataset("voc", "test", tmp_path)
    (tmp_path / "ImageSets" / "Segmentation" / "train.txt").write_text("a\nb\n")
    with pytest.raises(ValueError, match=r"no image in .*JPEGImages' for b \(mismatched files\)"):
        load_dataset("voc", "train", tmp_path)
    with pytest.raises(FileNotFoundError, match="is not a folder"):
        load_dataset("voc", "train", tmp_path / "nope")


def test_ade20k_shifts_classes_and_ignores_other(tmp_path):
    for part in ("images", "annotations"):
        (tmp_path / part / "training").mkdir(parents=True)
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(tmp_path / "images" / "training" / "x.jpg")
    labels = np.zeros((8, 8), np.uint8)
    labels[:4] = 1
    labels[4:, :4] = 150
    Image.fromarray(labels, mode="L").save(tmp_path / "annotations" / "training" / "x.png")
    _, mask = load_dataset("ade20k", "train", tmp_path, size=8)[0]
    assert mask[0, 0] == 0 and mask[7, 0] == 149 and mask[7, 7] == 255
    Image.fromarray(labels, mode="L").save(tmp_path / "annotations" / "training" / "y.png")
    with pytest.raises(ValueError, match=r"without an image: y \(mismatched files\)"):
        load_dataset("ade20k", "train", tmp_path)
    with pytest.raises(FileNotFoundError, match="missing the folder"):
        load_dataset("ade20k", "test", tmp_path)


def test_palette_is_voc_colour_map():
    colours = palette(256)
    assert colours[0].tolist() == [0, 0, 0] and colours[1].tolist() == [128, 0, 0]
    assert colours[15].tolist() == [192, 128, 128] and colours[255].tolist() == [224, 224, 192]
    import torch

    assert colour_mask(torch.tensor([[0, 15]])).tolist() == [[[0, 0, 0], [192, 128, 128]]]
