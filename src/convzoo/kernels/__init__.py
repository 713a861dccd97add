"""Execution backends chosen by measurement, below both ``ops/`` and ``deploy/``.

- :mod:`convzoo.kernels.large_kernel`: depthwise convolutions with wide kernels (direct, strips or FFT);
- :mod:`convzoo.kernels.binary_packed`: bit-packed XNOR convolution in pure PyTorch;
- :mod:`convzoo.kernels.binary_native`: the same integers from the C++ extension, when it was built.

A backend computes; it registers nothing and knows no operator or model. It imports only :mod:`convzoo.core`.
"""
