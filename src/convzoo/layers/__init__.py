"""Non-mixing layers: norms, activations, drop path, channel shuffle, space-to-depth.

Every module of this package is imported here, so adding a layer family is adding a file.
"""

import importlib
import pkgutil

for _module in pkgutil.iter_modules(__path__):
    importlib.import_module(f"{__name__}.{_module.name}")
