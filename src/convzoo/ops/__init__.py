"""Convolution operators: one family per file, each registered in ``convzoo.registry.OPS``.

Every module of this package is imported here, so adding a family is adding a file.
"""

import importlib
import pkgutil

from convzoo.ops.base import ConvSpec, Op, create_op, list_ops

for _module in pkgutil.iter_modules(__path__):
    importlib.import_module(f"{__name__}.{_module.name}")

__all__ = ["ConvSpec", "Op", "create_op", "list_ops"]
