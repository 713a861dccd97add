"""Architectures: one family per file, each variant registered in ``convzoo.registry.MODELS``.

``convzoo.registry.MODELS`` imports every module of this package on its first lookup, so adding a family
is adding a file.
"""

from convzoo.models.base import ConvNet, FeatureInfo, create_model, list_models

__all__ = ["ConvNet", "FeatureInfo", "create_model", "list_models"]
