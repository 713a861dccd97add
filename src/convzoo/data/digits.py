"""scikit-learn's bundled handwritten digits, upsampled to 32×32: convzoo's embedded default dataset."""

from __future__ import annotations

from functools import cache
from pathlib import Path

import torch
import torch.nn.functional as F

from convzoo.data.base import DatasetInfo, TensorImageDataset, standardize
from convzoo.registry import DATASETS

__all__ = ["load_digits"]

TEST_FRACTION = 0.25
SPLIT_SEED = 0
SIZE = 32


@cache
def _digits() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, tuple, tuple]:
    from sklearn.datasets import load_digits as sklearn_digits
    from sklearn.model_selection import train_test_split

    bunch = sklearn_digits()
    images = torch.from_numpy(bunch.images).float().div_(16.0).unsqueeze(1)  # (1797, 1, 8, 8) in [0, 1]
    labels = torch.from_numpy(bunch.target).long()
    train_idx, test_idx = train_test_split(
        range(len(labels)), test_size=TEST_FRACTION, stratify=bunch.target, random_state=SPLIT_SEED
    )
    # bilinear upsampling to the 32×32 inputs CIFAR-style models expect
    images = F.interpolate(images, size=(SIZE, SIZE), mode="bilinear", align_corners=False)  # (1797, 1, 32, 32)
    train_idx, test_idx = torch.tensor(train_idx), torch.tensor(test_idx)
    mean, std, (train, test) = standardize(images[train_idx], images[test_idx])
    return train, labels[train_idx], test, labels[test_idx], mean, std


@DATASETS.register("digits", kind="classify", dims=(2,))
def load_digits(split: str = "train", root: str | Path | None = None) -> TensorImageDataset:
    """Handwritten digits (scikit-learn, 1,797 real 8×8 scans) at 32×32; fixed stratified 75/25 split; no download."""
    if root is not None:
        raise ValueError(f"digits: is bundled with scikit-learn and takes no data folder, got {str(root)!r}")
    train_x, train_y, test_x, test_y, mean, std = _digits()
    images, labels = (train_x, train_y) if split == "train" else (test_x, test_y)
    info = DatasetInfo(
        name="digits",
        split=split,
        num_classes=10,
        channels=1,
        image_size=(SIZE, SIZE),
        class_names=tuple(str(d) for d in range(10)),
        mean=mean,
        std=std,
    )
    return TensorImageDataset(images, labels, info)
