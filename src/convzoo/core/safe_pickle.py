"""Reading pickles that come from outside (CIFAR batches, Planetoid graphs) without running what they name.

Unpickling calls whatever global a file names. :func:`restricted_load` resolves only the globals the caller
allows (numpy arrays and scalars, say) and refuses any other with :class:`pickle.UnpicklingError` naming it, so
a crafted file cannot run code.
"""

from __future__ import annotations

import pickle
from collections.abc import Collection
from typing import IO, Any

__all__ = ["NUMPY_GLOBALS", "restricted_load"]

# what a pickled numpy array or scalar references (numpy >= 2 moved numpy.core to numpy._core)
NUMPY_GLOBALS = frozenset(
    {
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy.core.multiarray", "scalar"),
        ("numpy._core.multiarray", "scalar"),
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
        ("_codecs", "encode"),
    }
)


class _RestrictedUnpickler(pickle.Unpickler):
    def __init__(self, file: IO[bytes], allowed: Collection[tuple[str, str]], what: str, encoding: str) -> None:
        super().__init__(file, encoding=encoding)
        self.allowed = allowed
        self.what = what

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) not in self.allowed:
            raise pickle.UnpicklingError(f"it references {module}.{name}, which {self.what} never holds")
        return super().find_class(module, name)


def restricted_load(
    file: IO[bytes], allowed: Collection[tuple[str, str]], what: str, *, encoding: str = "ASCII"
) -> Any:
    """Unpickle ``file`` resolving only the ``(module, name)`` globals in ``allowed``; ``what`` names the kind of
    file in the refusal (``"a CIFAR batch"``)."""
    return _RestrictedUnpickler(file, allowed, what, encoding).load()
