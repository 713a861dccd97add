"""CIFAR-10 and CIFAR-100 from a local folder in the standard python-pickle layout (no download).

The files are pickles, and unpickling runs whatever a file names; they are read with an unpickler that
resolves only the few globals a CIFAR batch holds (numpy arrays and their dtypes), so a crafted file is
refused with a clear error instead of running code.
"""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import torch

from convzoo.core.safe_pickle import NUMPY_GLOBALS, restricted_load
from convzoo.data.base import DatasetInfo, TensorImageDataset, check_root, standardize
from convzoo.registry import DATASETS

__all__ = ["load_cifar10", "load_cifar100"]

_LAYOUT = {
    "cifar10": "ROOT/data_batch_1 … data_batch_5, ROOT/test_batch, ROOT/batches.meta "
    "(the extracted cifar-10-batches-py folder)",
    "cifar100": "ROOT/train, ROOT/test, ROOT/meta (the extracted cifar-100-python folder)",
}


def _unpickle(name: str, path: Path) -> dict:
    if not path.is_file():
        raise FileNotFoundError(f"{name}: missing {str(path)!r}; expected layout: {_LAYOUT[name]}")
    try:
        with path.open("rb") as f:
            batch = restricted_load(f, NUMPY_GLOBALS, "a CIFAR batch", encoding="bytes")
    except (pickle.UnpicklingError, EOFError, ValueError, AttributeError, TypeError) as error:
        raise ValueError(
            f"{name}: {str(path)!r} is not a CIFAR pickle ({error}); expected layout: {_LAYOUT[name]}"
        ) from None
    if not isinstance(batch, dict):
        raise ValueError(f"{name}: {str(path)!r} holds a {type(batch).__name__}, expected a CIFAR batch dict")
    return batch


def _batch(name: str, path: Path, label_key: bytes) -> tuple[np.ndarray, np.ndarray]:
    batch = _unpickle(name, path)
    if b"data" not in batch or label_key not in batch:
        raise ValueError(f"{name}: {str(path)!r} lacks b'data' or {label_key!r}; expected layout: {_LAYOUT[name]}")
    data = np.asarray(batch[b"data"], dtype=np.uint8)
    if data.ndim != 2 or data.shape[1] != 3 * 32 * 32:
        raise ValueError(f"{name}: {str(path)!r} holds data of shape {data.shape}, expected (N, 3072)")
    return data, np.asarray(batch[label_key], dtype=np.int64)


def _load(name: str, split: str, root, train_files, test_files, meta_file, label_key, names_key) -> TensorImageDataset:
    folder = check_root(name, root, _LAYOUT[name])
    parts = {
        s: [_batch(name, folder / f, label_key) for f in files]
        for s, files in (("train", train_files), ("test", test_files))
    }
    tensors = {}
    for s, batches in parts.items():
        data = np.concatenate([d for d, _ in batches])
        labels = np.concatenate([y for _, y in batches])
        images = torch.from_numpy(data).float().div_(255.0).view(-1, 3, 32, 32)  # rows are R, G, B planes
        tensors[s] = (images, torch.from_numpy(labels))
    mean, std, (train, test) = standardize(tensors["train"][0], tensors["test"][0])
    meta = _unpickle(name, folder / meta_file)
    class_names = tuple(n.decode() if isinstance(n, bytes) else str(n) for n in meta.get(names_key, []))
    images, labels = (train, tensors["train"][1]) if split == "train" else (test, tensors["test"][1])
    info = DatasetInfo(name, split, len(class_names), 3, (32, 32), class_names, mean, std, root=str(folder))
    if int(labels.max()) >= info.num_classes:
        raise ValueError(
            f"{name}: labels go up to {int(labels.max())} but the meta file names {info.num_classes} classes"
        )
    return TensorImageDataset(images, labels, info)


@DATASETS.register("cifar10", kind="classify", dims=(2,))
def load_cifar10(split: str = "train", root: str | Path | None = None) -> TensorImageDataset:
    """CIFAR-10 (60,000 32×32 colour images, 10 classes) from the extracted python-pickle folder."""
    train = [f"data_batch_{i}" for i in range(1, 6)]
    return _load("cifar10", split, root, train, ["test_batch"], "batches.meta", b"labels", b"label_names")


@DATASETS.register("cifar100", kind="classify", dims=(2,))
def load_cifar100(split: str = "train", root: str | Path | None = None) -> TensorImageDataset:
    """CIFAR-100 (60,000 32×32 colour images, 100 fine classes) from the extracted python-pickle folder."""
    return _load("cifar100", split, root, ["train"], ["test"], "meta", b"fine_labels", b"fine_label_names")
