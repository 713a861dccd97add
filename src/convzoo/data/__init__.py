"""Datasets: the embedded default (digits), standard on-disk formats, and super-resolution patches.

Every module of this package is imported here, so adding a dataset is adding a file.
"""

import importlib
import pkgutil

from convzoo.data.base import DatasetInfo, TensorImageDataset, list_datasets, load_dataset

for _module in pkgutil.iter_modules(__path__):
    if _module.name != "base":
        importlib.import_module(f"{__name__}.{_module.name}")

__all__ = ["DatasetInfo", "TensorImageDataset", "list_datasets", "load_dataset"]
