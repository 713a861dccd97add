"""Loading an optional C++ extension of convzoo: the module when the package build compiled it, else why not."""

from __future__ import annotations

import importlib
from types import ModuleType

__all__ = ["NativeExtension"]


class NativeExtension:
    """The extension module ``module`` (``convzoo._binary_native``, ...), imported once; ``what`` names it in errors.

    An extension that is not built (no compiler, an isolated build) or was built against another torch leaves
    :attr:`module` ``None`` and says why in :attr:`reason`; :meth:`require` then raises that, never a bare
    ``ImportError`` from deep inside a kernel.
    """

    def __init__(self, module: str, what: str) -> None:
        self.what = what
        try:
            self.module: ModuleType | None = importlib.import_module(module)
        except ImportError as error:
            self.module = None
            self.reason = f"{type(error).__name__}: {error}"
        else:
            self.reason = ""

    def available(self) -> bool:
        """Whether the extension loaded."""
        return self.module is not None

    def unavailable_reason(self) -> str:
        """Why the extension did not load ("" when it did)."""
        return self.reason

    def require(self) -> ModuleType:
        """The extension module, or a ``RuntimeError`` saying why it is not available."""
        if self.module is None:
            raise RuntimeError(f"{self.what}: the native extension is not available ({self.reason})")
        return self.module

    def isa(self) -> str:
        """The instruction set the extension's kernels run with (``avx512f``, ``portable``, ...)."""
        return self.require().isa()

    def set_isa(self, name: str) -> None:
        """Run the kernels with ``"portable"`` or one of this CPU's instruction sets; others raise."""
        self.require().set_isa(name)
