"""Architectures: one family per file, each variant registered in ``convzoo.registry.MODELS``.

Every module of this package is imported here, so adding a family is adding a file.
"""

import importlib
import pkgutil

from convzoo.models.base import ConvNet, FeatureInfo, create_model, list_models

for _module in pkgutil.iter_modules(__path__):
    if _module.name != "base":
        importlib.import_module(f"{__name__}.{_module.name}")

__all__ = ["ConvNet", "FeatureInfo", "create_model", "list_models"]
