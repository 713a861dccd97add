"""Segmentation sets read from their published folder layouts: PASCAL VOC 2012 (``voc``) and ADE20K's scene
parsing release (``ade20k``, ADEChallengeData2016).

Images are read when indexed, resized to ``size``×``size`` (bilinear; the label map by nearest neighbour, so no
label is invented) and standardised with ImageNet's mean and std. VOC's labels are its palette indices (0
background, 1–20 objects, 255 the unlabelled object boundaries); ADE20K's 0 ("other") becomes the ignore label
255 and its classes 1–150 become 0–149, as the benchmark scores them. The test split is the validation set (the
test sets' labels are not released).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import Dataset

from convzoo.core.validate import check_int
from convzoo.data.base import DatasetInfo, check_root, check_split
from convzoo.data.dense import IGNORE_INDEX
from convzoo.registry import DATASETS

__all__ = ["FolderSegmentation", "load_voc", "load_ade20k", "VOC_CLASSES", "VOC_LAYOUT", "ADE_LAYOUT"]

MEAN, STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
VOC_CLASSES = (
    "background", "aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat", "chair", "cow",
    "diningtable", "dog", "horse", "motorbike", "person", "pottedplant", "sheep", "sofa", "train", "tvmonitor",
)  # fmt: skip
VOC_LAYOUT = (
    "ROOT/JPEGImages/NAME.jpg, ROOT/SegmentationClass/NAME.png (palette indices, 255 = boundary) and "
    "ROOT/ImageSets/Segmentation/{train,val}.txt listing the NAMEs (ROOT is VOCdevkit/VOC2012)"
)
ADE_LAYOUT = (
    "ROOT/images/{training,validation}/NAME.jpg and ROOT/annotations/{training,validation}/NAME.png "
    "(0 = other, 1-150 the classes; ROOT is ADEChallengeData2016)"
)


class FolderSegmentation(Dataset):
    """``(image, mask)`` pairs read from files: ``(3, size, size)`` standardised, ``(size, size)`` int64."""

    def __init__(self, pairs: list[tuple[Path, Path]], size: int, shift: bool, info: DatasetInfo) -> None:
        self.pairs, self.size, self.shift, self.info = pairs, size, shift, info

    def __len__(self) -> int:
        return len(self.pairs)

    def __getitem__(self, index: int) -> tuple[Tensor, Tensor]:
        from PIL import Image

        image_path, mask_path = self.pairs[index]
        with Image.open(image_path) as image:
            rgb = image.convert("RGB").resize((self.size, self.size), Image.Resampling.BILINEAR)
        with Image.open(mask_path) as mask:
            if mask.mode not in ("P", "L", "I", "I;16"):
                raise ValueError(f"{self.info.name}: {str(mask_path)!r} is a {mask.mode} image, not a label map")
            labels = np.asarray(mask.resize((self.size, self.size), Image.Resampling.NEAREST), dtype=np.int64)
        if self.shift:  # ADE20K: 0 (other) → ignored, 1..150 → 0..149
            labels = np.where(labels == 0, IGNORE_INDEX, labels - 1)
        x = torch.from_numpy(np.asarray(rgb, dtype=np.float32) / 255.0).permute(2, 0, 1)  # (3, size, size)
        x = (x - torch.tensor(MEAN).view(3, 1, 1)) / torch.tensor(STD).view(3, 1, 1)
        return x, torch.from_numpy(labels)


def _pairs(name: str, images: Path, masks: Path, names: list[str], layout: str) -> list[tuple[Path, Path]]:
    """``(image, mask)`` paths of ``names``; a missing folder or an unmatched file raises naming them."""
    for folder in (images, masks):
        if not folder.is_dir():
            raise FileNotFoundError(f"{name}: missing the folder {str(folder)!r}; expected layout: {layout}")
    found_images = {p.stem: p for p in images.iterdir() if p.suffix.lower() in (".jpg", ".jpeg", ".png")}
    found_masks = {p.stem: p for p in masks.iterdir() if p.suffix.lower() == ".png"}
    for what, found, folder in (("image", found_images, images), ("label map", found_masks, masks)):
        missing = [n for n in names if n not in found]
        if missing:
            shown = ", ".join(missing[:5]) + (f", … ({len(missing)} in all)" if len(missing) > 5 else "")
            raise ValueError(f"{name}: no {what} in {str(folder)!r} for {shown} (mismatched files)")
    if not names:
        raise FileNotFoundError(f"{name}: no images listed for this split; expected layout: {layout}")
    return [(found_images[n], found_masks[n]) for n in names]


@DATASETS.register("voc", kind="seg", dims=(2,))
def load_voc(split: str = "train", root: str | Path | None = None, *, size: int = 320) -> FolderSegmentation:
    """PASCAL VOC 2012 segmentation (train: train.txt, test: val.txt), 21 classes, from its folder layout."""
    check_split("voc", split)
    check_int(size, "size", "voc", low=8)
    base = check_root("voc", root, VOC_LAYOUT)
    listing = base / "ImageSets" / "Segmentation" / ("train.txt" if split == "train" else "val.txt")
    if not listing.is_file():
        raise FileNotFoundError(f"voc: missing the list {str(listing)!r}; expected layout: {VOC_LAYOUT}")
    names = [line.strip() for line in listing.read_text().splitlines() if line.strip()]
    pairs = _pairs("voc", base / "JPEGImages", base / "SegmentationClass", names, VOC_LAYOUT)
    info = DatasetInfo(
        "voc", split, 21, 3, (size, size), VOC_CLASSES, MEAN, STD, str(root), extra={"ignore_index": IGNORE_INDEX}
    )
    return FolderSegmentation(pairs, size, False, info)


@DATASETS.register("ade20k", kind="seg", dims=(2,))
def load_ade20k(split: str = "train", root: str | Path | None = None, *, size: int = 320) -> FolderSegmentation:
    """ADE20K scene parsing (ADEChallengeData2016; test: the validation set), 150 classes, from its layout."""
    check_split("ade20k", split)
    check_int(size, "size", "ade20k", low=8)
    base = check_root("ade20k", root, ADE_LAYOUT)
    part = "training" if split == "train" else "validation"
    images, masks = base / "images" / part, base / "annotations" / part
    names = sorted(p.stem for p in images.iterdir() if p.suffix.lower() in (".jpg", ".jpeg")) if images.is_dir() else []
    if images.is_dir() and masks.is_dir():
        extra = sorted({p.stem for p in masks.iterdir() if p.suffix.lower() == ".png"} - set(names))
        if extra:
            raise ValueError(
                f"ade20k: label maps in {str(masks)!r} without an image: {', '.join(extra[:5])} (mismatched files)"
            )
    pairs = _pairs("ade20k", images, masks, names, ADE_LAYOUT)
    info = DatasetInfo(
        "ade20k", split, 150, 3, (size, size), (), MEAN, STD, str(root), extra={"ignore_index": IGNORE_INDEX}
    )
    return FolderSegmentation(pairs, size, True, info)
