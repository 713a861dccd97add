"""Build of convzoo's native extensions, ``convzoo._binary_native`` (the packed XNOR convolution) and
``convzoo._sparse_native`` (the sparse 1×1 convolution) and ``convzoo._sparse3d_native`` (the sparse 3-D
convolution's gather-multiply-accumulate).

Metadata lives in pyproject.toml; this file only adds the extension. It is optional: the build is skipped
when torch cannot be imported at build time (an isolated build without torch: install with
``pip install --no-build-isolation``) or when ``CONVZOO_NO_NATIVE=1``, and a failed compilation (no C++
compiler, an unsupported one) is reported and skipped. Without it convzoo runs the pure-PyTorch packed path,
which computes the same integers.
"""

from __future__ import annotations

import os
import sys

from setuptools import setup

SOURCE = "src/convzoo/csrc/binary_conv.cpp"
SPARSE_SOURCE = "src/convzoo/csrc/sparse_pointwise.cpp"
SPARSE3D_SOURCE = "src/convzoo/csrc/sparse_conv3d.cpp"


def _native_build():
    """``(ext_modules, cmdclass)`` for the extension, or empty ones when it cannot or should not be built."""
    if os.environ.get("CONVZOO_NO_NATIVE") == "1":
        print("convzoo: CONVZOO_NO_NATIVE=1, skipping the native binary convolution", file=sys.stderr)
        return [], {}
    try:
        from torch.utils.cpp_extension import BuildExtension, CppExtension
    except ImportError:
        print(
            "convzoo: torch is not importable at build time (try pip install --no-build-isolation); "
            "skipping the native binary convolution, the pure-PyTorch path will run",
            file=sys.stderr,
        )
        return [], {}

    class OptionalBuild(BuildExtension):
        """Build the extension when the compiler can; otherwise say why and install without it."""

        def build_extensions(self):
            self._failed = set()
            try:
                super().build_extensions()
            except Exception as error:  # noqa: BLE001 - e.g. the compiler check found no working compiler
                self._failed.update(ext.name for ext in self.extensions)
                print(
                    f"convzoo: could not build the native extension ({type(error).__name__}: {error}); "
                    "the pure-PyTorch packed path will run",
                    file=sys.stderr,
                )
            # an extension that failed is not installed (nor copied next to the sources by editable installs)
            self.extensions = [ext for ext in self.extensions if ext.name not in self._failed]

        def build_extension(self, ext):
            try:
                super().build_extension(ext)
            except Exception as error:  # noqa: BLE001 - any compiler failure leaves the fallback in place
                self._failed.add(ext.name)
                print(
                    f"convzoo: could not build {ext.name} ({type(error).__name__}: {error}); "
                    "the pure-PyTorch packed path will run",
                    file=sys.stderr,
                )

    unix = os.name != "nt"
    compile_args = ["-O3", "-fopenmp", "-ffp-contract=off"] if unix else ["/O2", "/openmp"]
    extension = CppExtension(
        "convzoo._binary_native",
        [SOURCE],
        extra_compile_args=compile_args,
        extra_link_args=["-fopenmp"] if unix else [],
    )
    # the sparse kernels (S107, S43) may contract multiply-adds into FMAs: they match the dense convs to float tolerance
    sparse = CppExtension(
        "convzoo._sparse_native",
        [SPARSE_SOURCE],
        extra_compile_args=["-O3", "-fopenmp"] if unix else ["/O2", "/openmp"],
        extra_link_args=["-fopenmp"] if unix else [],
    )
    sparse3d = CppExtension(
        "convzoo._sparse3d_native",
        [SPARSE3D_SOURCE],
        extra_compile_args=["-O3", "-fopenmp"] if unix else ["/O2", "/openmp"],
        extra_link_args=["-fopenmp"] if unix else [],
    )
    return [extension, sparse, sparse3d], {"build_ext": OptionalBuild.with_options(use_ninja=False)}


ext_modules, cmdclass = _native_build()
setup(ext_modules=ext_modules, cmdclass=cmdclass)
