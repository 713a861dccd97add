"""Convolution operators: one family per file, each registered in ``convzoo.registry.OPS``.

``convzoo.registry.OPS`` imports every module of this package on its first lookup, so adding a family is
adding a file.
"""

from convzoo.ops.base import ConvSpec, Op, create_op, list_ops

__all__ = ["ConvSpec", "Op", "create_op", "list_ops"]
