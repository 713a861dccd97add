"""convzoo: the convolution literature as one verified, measured catalog."""

from importlib.metadata import PackageNotFoundError, version

from convzoo import layers, ops  # noqa: F401  (importing registers every operator and layer)
from convzoo.convert import ConvertReport, convert
from convzoo.ops.base import ConvSpec, Op, create_op, list_ops
from convzoo.registry import LAYERS, MODELS, OPS, TRANSFORMS, UnknownNameError

try:
    __version__ = version("convzoo")
except PackageNotFoundError:  # running from a source tree without installation
    __version__ = "0.0.0+unknown"

__all__ = [
    "ConvSpec",
    "ConvertReport",
    "LAYERS",
    "MODELS",
    "OPS",
    "Op",
    "TRANSFORMS",
    "UnknownNameError",
    "__version__",
    "convert",
    "create_op",
    "list_ops",
]
