"""convzoo: the convolution literature as one verified, measured catalog."""

from importlib.metadata import PackageNotFoundError, version

from convzoo import benchmarks, data, deploy, layers, models, ops  # noqa: F401  (importing registers everything)
from convzoo.convert import ConvertReport, convert
from convzoo.data import load_dataset
from convzoo.models import create_model, list_models
from convzoo.models.share_kernels import share_kernels
from convzoo.ops.base import ConvSpec, Op, create_op, list_ops
from convzoo.profile import Profile, profile
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
    "Profile",
    "TRANSFORMS",
    "UnknownNameError",
    "__version__",
    "convert",
    "create_model",
    "create_op",
    "list_models",
    "load_dataset",
    "profile",
    "share_kernels",
    "list_ops",
]
