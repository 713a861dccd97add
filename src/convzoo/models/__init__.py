"""Architectures: one family per file, each variant registered in ``convzoo.registry.MODELS``.

``convzoo.registry.MODELS`` imports every module of this package on its first lookup, so adding a family
is adding a file. The contract lives in :mod:`convzoo.models.base`, registration and ``create_model`` in
:mod:`convzoo.models.registration`, parameter and MAC counting in :mod:`convzoo.models.counting`.
"""

from convzoo.models.base import ConvNet, FeatureInfo
from convzoo.models.registration import create_model, list_models

__all__ = ["ConvNet", "FeatureInfo", "create_model", "list_models"]
