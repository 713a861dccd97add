"""What every convzoo dataset returns: tensors in memory plus a description (classes, channels, size).

Datasets are registered in ``convzoo.registry.DATASETS``; ``load_dataset(name, split, root)``
builds one. Classification sets hold ``images`` ``(N, C, H, W)`` float32 standardised with the
training split's per-channel mean and std, and ``labels`` ``(N,)`` int64.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from torch import Tensor
from torch.utils.data import Dataset

from convzoo.registry import DATASETS

__all__ = ["DatasetInfo", "TensorImageDataset", "load_dataset", "list_datasets", "standardize"]

SPLITS = ("train", "test")


@dataclass(frozen=True)
class DatasetInfo:
    """Description of a loaded dataset, recorded in checkpoints so evaluation rebuilds the same data."""

    name: str
    split: str
    num_classes: int
    channels: int
    image_size: tuple[int, int]
    class_names: tuple[str, ...]
    mean: tuple[float, ...]
    std: tuple[float, ...]
    root: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)


class TensorImageDataset(Dataset):
    """Images ``(N, C, H, W)`` and integer labels ``(N,)`` held in memory."""

    def __init__(self, images: Tensor, labels: Tensor, info: DatasetInfo) -> None:
        if images.dim() != 4 or labels.dim() != 1 or images.shape[0] != labels.shape[0]:
            raise ValueError(
                f"{info.name}: expected images (N, C, H, W) and labels (N,), got {tuple(images.shape)} and "
                f"{tuple(labels.shape)}"
            )
        self.images = images
        self.labels = labels
        self.info = info

    def __len__(self) -> int:
        return self.images.shape[0]

    def __getitem__(self, index: int) -> tuple[Tensor, Tensor]:
        return self.images[index], self.labels[index]


def standardize(train: Tensor, *others: Tensor) -> tuple[tuple[float, ...], tuple[float, ...], list[Tensor]]:
    """Per-channel mean and std of ``train`` (N, C, H, W) and every tensor standardised with them."""
    mean = train.mean(dim=(0, 2, 3))
    std = train.std(dim=(0, 2, 3)).clamp_min(1e-6)
    view = (1, -1, 1, 1)
    out = [(t - mean.view(view)) / std.view(view) for t in (train, *others)]
    return tuple(mean.tolist()), tuple(std.tolist()), out


def check_split(name: str, split: str) -> None:
    if split not in SPLITS:
        raise ValueError(f"{name}: split must be one of {', '.join(SPLITS)}, got {split!r}")


def check_root(name: str, root: str | Path | None, layout: str) -> Path:
    """``root`` as an existing directory, or a ``FileNotFoundError`` naming the layout ``name`` expects."""
    if root is None:
        raise ValueError(f"{name}: needs a data folder (--data-root / root=); expected layout: {layout}")
    path = Path(root).expanduser()
    if not path.is_dir():
        raise FileNotFoundError(f"{name}: {str(path)!r} is not a folder; expected layout: {layout}")
    return path


def load_dataset(name: str, split: str = "train", root: str | Path | None = None, **options: Any) -> Dataset:
    """Build the registered dataset ``name`` (``split`` "train" or "test"; ``root`` for on-disk sets)."""
    entry = DATASETS.get(name)
    check_split(name, split)
    return entry.obj(split=split, root=root, **options)


def list_datasets() -> list[str]:
    return DATASETS.names()
