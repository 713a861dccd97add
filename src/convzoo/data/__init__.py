"""Datasets: the embedded default (digits), standard on-disk formats, and super-resolution patches.

``convzoo.registry.DATASETS`` imports every module of this package on its first lookup, so adding a dataset
is adding a file.
"""

from convzoo.data.base import DatasetInfo, TensorImageDataset, list_datasets, load_dataset

__all__ = ["DatasetInfo", "TensorImageDataset", "list_datasets", "load_dataset"]
