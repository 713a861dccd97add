"""convzoo: the convolution literature as one verified, measured catalog.

Importing convzoo loads the contracts and entry points only; each registry imports the modules that
register into it on its first lookup (``convzoo.registry``), so benchmark suites, model families and
optional dependencies load when they are first asked for.
"""

from importlib.metadata import PackageNotFoundError, version

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
