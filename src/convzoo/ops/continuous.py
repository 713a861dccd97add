"""Continuous-kernel convolutions: CKConv (S117 CCNN) and FlexConv (S27), N-d, with a direct and an FFT path.

The kernel is not stored: a small kernel network (:mod:`convzoo.ops.kernel_nets`, SIREN or MAGNet) maps each
relative position of a ``linspace(-1, 1, k)`` grid to the kernel's values, so the same parameters give a kernel
of any size (``op.kernel(size)``) and the same module runs on 1-D, 2-D and 3-D data. FlexConv multiplies that
kernel by a Gaussian mask whose width σ (the learnable "kernel size") receives gradient.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from convzoo.core.conv import conv_nd, same_padding
from convzoo.core.validate import check_choice, check_int, is_number, ntuple
from convzoo.ops.base import ConvSpec, Op
from convzoo.ops.kernel_nets import KERNEL_NETS, relative_positions
from convzoo.registry import OPS

__all__ = ["fft_conv_nd", "CKConv", "FlexConv", "FFT_MIN_KERNEL"]

FFT_MIN_KERNEL = 50
"""The automatic choice uses the FFT path when every kernel side exceeds this (the official code's rule)."""


def fft_conv_nd(x: Tensor, weight: Tensor, bias: Tensor | None, padding: Sequence[int], groups: int = 1) -> Tensor:
    """``F.conv{d}d(x, weight, bias, padding=padding, groups=groups)`` (stride 1) computed with FFTs.

    ``x``: ``(N, C_in, *S)``; ``weight``: ``(C_out, C_in / groups, *k)``; returns ``(N, C_out, *(S + 2p - k + 1))``.
    Cross-correlation is a product with the conjugate spectrum: ``y = irfft(rfft(x_pad) · conj(rfft(w)))``, taken
    over the padded length ``L = S + 2p`` so that no output index wraps around. Half-precision inputs are
    transformed in float32 (``torch.fft`` has no bfloat16 kernels) and cast back.
    """
    d = weight.dim() - 2
    dtype = x.dtype
    compute = torch.float32 if dtype in (torch.float16, torch.bfloat16) else dtype
    pad = [p for size in reversed(padding) for p in (size, size)]
    x_pad = F.pad(x.to(compute), pad)  # (N, C_in, *L)
    length = x_pad.shape[2:]
    kernel = weight.shape[2:]
    out_size = [n - k + 1 for n, k in zip(length, kernel, strict=True)]
    dims = tuple(range(2, 2 + d))
    x_freq = torch.fft.rfftn(x_pad, s=length, dim=dims)  # (N, C_in, *F)
    w_freq = torch.fft.rfftn(weight.to(compute), s=length, dim=dims)  # (C_out, C_in / g, *F)
    batch, c_in = x.shape[:2]
    c_out = weight.shape[0]
    freq_shape = x_freq.shape[2:]
    x_freq = x_freq.reshape(batch, groups, c_in // groups, -1)  # (N, g, C_in / g, F)
    w_freq = w_freq.reshape(groups, c_out // groups, c_in // groups, -1)  # (g, C_out / g, C_in / g, F)
    y_freq = torch.einsum("ngif,goif->ngof", x_freq, w_freq.conj()).reshape(batch, c_out, *freq_shape)
    y = torch.fft.irfftn(y_freq, s=length, dim=dims)  # (N, C_out, *L)
    y = y[(slice(None), slice(None), *(slice(0, n) for n in out_size))]
    if bias is not None:
        y = y + bias.to(compute).view(1, -1, *([1] * d))
    return y.to(dtype)


class _ContinuousConv(Op):
    """Shared machinery of CKConv and FlexConv: kernel network, sampled kernel, direct/FFT convolution."""

    def __init__(
        self,
        in_channels,
        out_channels,
        kernel_size=3,
        stride=1,
        *,
        dim=2,
        bias=True,
        kernel_net: str = "magnet",
        hidden: int = 32,
        no_layers: int = 3,
        omega_0: float | None = None,
        separable: bool = False,
        fft: bool | None = None,
    ):
        super().__init__(in_channels, out_channels, kernel_size, stride, dim=dim, bias=bias)
        name = type(self).registry_name
        check_choice(kernel_net, sorted(KERNEL_NETS), "kernel_net", name)
        check_int(hidden, "hidden", name)
        check_int(no_layers, "no_layers", name)
        if kernel_net == "siren" and no_layers < 2:
            raise ValueError(f"{name}: a SIREN kernel net needs no_layers >= 2, got {no_layers!r}")
        if omega_0 is not None and (not is_number(omega_0) or omega_0 <= 0):
            raise ValueError(f"{name}: omega_0 must be a positive number or None, got {omega_0!r}")
        if fft not in (None, True, False):
            raise ValueError(f"{name}: fft must be None (choose by size), True or False, got {fft!r}")
        if not isinstance(separable, bool):
            raise TypeError(f"{name}: separable must be a bool, got {separable!r}")
        self.kernel_net_name = kernel_net
        self.separable = separable
        self.fft = fft
        kernel_outputs = in_channels if separable else in_channels * out_channels
        net_options = {"hidden": hidden, "no_layers": no_layers}
        if omega_0 is not None:
            net_options["omega_0"] = float(omega_0)
        if kernel_net == "magnet":
            net_options["init_spatial_value"] = self.init_spatial_value()
        self.kernel_net = KERNEL_NETS[kernel_net](dim, kernel_outputs, **net_options)
        # Chang et al. (2020) initialisation of the last layer, at the constructed kernel size (official code)
        fan_in = math.prod(self.kernel_size) * (1 if separable else in_channels)
        with torch.no_grad():
            self.kernel_net.output_linear.weight.mul_(math.sqrt(1.0 / fan_in))
        bias_size = in_channels if separable else out_channels
        self.bias = nn.Parameter(torch.zeros(bias_size)) if bias else None
        self.channel_mixer = None
        self.mixer_bias = None
        if separable:
            self.channel_mixer = nn.Parameter(torch.empty(out_channels, in_channels, *([1] * dim)))
            nn.init.kaiming_uniform_(self.channel_mixer, nonlinearity="linear")
            self.mixer_bias = nn.Parameter(torch.zeros(out_channels)) if bias else None

    def init_spatial_value(self) -> float:
        """Range of MAGNet's initial Gabor centres μ (1 for CKConv)."""
        return 1.0

    def mask(self, positions: Tensor) -> Tensor | None:
        """Multiplicative mask on the kernel at ``positions (*size, d)``; None for CKConv."""
        return None

    def kernel(self, size: int | Sequence[int] | None = None) -> Tensor:
        """The kernel (FlexConv: already masked) sampled on a ``size`` grid (default: ``kernel_size``), any size.

        Returns ``(C_out, C_in, *size)``, or the depthwise ``(C_in, 1, *size)`` kernel when ``separable``.
        """
        size = self.kernel_size if size is None else ntuple(size, self.dim, "size", type(self).registry_name)
        if any(s < 1 for s in size):
            raise ValueError(f"{type(self).registry_name}: kernel size must be positive, got {size!r}")
        reference = self.kernel_net.output_linear.weight
        positions = relative_positions(size, dtype=reference.dtype, device=reference.device)  # (*size, d)
        values = self.kernel_net(positions.reshape(-1, self.dim))  # (P, C_out · C_in)
        values = values.t().reshape(-1, self.in_channels, *size)  # (C_out, C_in, *size)
        mask = self.mask(positions)
        if mask is not None:
            values = values * mask  # mask (*size) broadcasts over channels
        if self.separable:
            values = values.reshape(self.in_channels, 1, *size)  # (C_in, 1, *size): depthwise
        return values

    def uses_fft(self) -> bool:
        return self.fft if self.fft is not None else all(k > FFT_MIN_KERNEL for k in self.kernel_size)

    def forward(self, x: Tensor) -> Tensor:
        self.check_input(x)
        weight = self.kernel()
        groups = self.in_channels if self.separable else 1
        padding = same_padding(self.kernel_size)
        if self.uses_fft():
            y = fft_conv_nd(x, weight, self.bias, padding, groups)
            y = y[(slice(None), slice(None), *(slice(None, None, s) for s in self.stride))]
        else:
            y = conv_nd(x, weight, self.bias, stride=self.stride, padding=padding, groups=groups)
        if self.separable:
            y = conv_nd(y, self.channel_mixer, self.mixer_bias)
        return y

    def dense_kernel(self) -> ConvSpec:
        with torch.no_grad():
            weight = self.kernel()
            bias = None if self.bias is None else self.bias.clone()
            if self.separable:
                mixer = self.channel_mixer.flatten(1)  # (C_out, C_in)
                weight = mixer.view(*mixer.shape, *([1] * self.dim)) * weight.transpose(0, 1)  # (C_out, C_in, *k)
                if bias is not None:
                    bias = mixer @ bias + self.mixer_bias
        return ConvSpec(weight, bias, self.stride, same_padding(self.kernel_size), (1,) * self.dim)

    def extra_repr(self) -> str:
        fft = "auto" if self.fft is None else self.fft
        return f"{super().extra_repr()}, kernel_net={self.kernel_net_name}, separable={self.separable}, fft={fft}"


@OPS.register("ckconv", kind="grid", dims=(1, 2, 3), papers=("ccnn",), linear=True, dynamic=False)
class CKConv(_ContinuousConv):
    """CKConv (S117, Modelling Long Range Dependencies in ND: From Task-Specific to a General Purpose CNN).

    ``W[o, i, t] = KernelNet(p_t)[o · C_in + i]`` at the relative positions ``p_t`` of a ``linspace(-1, 1, k)``
    grid per dim; ``y = conv(x, W) + b`` with "same" padding. ``kernel_net``: ``"magnet"`` (default, the CCNN's
    choice) or ``"siren"`` (CKConv's); ``hidden``/``no_layers`` its width and depth (32 and 3 as in the official
    configs); ``omega_0`` its frequency scale (SIREN 30, MAGNet 2.0, see below). ``separable=True`` gives the
    CCNN's ``SeparableFlexConv``-style depthwise continuous kernel followed by a 1×1 channel mixer.
    ``kernel(size)`` samples the kernel at any resolution; ``fft=None`` uses the FFT path when every kernel side
    exceeds 50 (the official rule), ``True``/``False`` forces it. Input ``(N, C_in, *S)`` → ``(N, C_out, *S')``.

    Departures: the kernel size is fixed by ``kernel_size`` (the official "same"/"full" modes size it from the
    first input; pass ``kernel_size`` = input size for that); the Chang et al. initialisation of the last kernel
    layer is applied at construction rather than at the first forward; a grid side of 1 samples position 0 (the
    official ``linspace(-1, 1, 1)`` gives -1). MAGNet's ω₀ default of 2.0 is FlexConv's CIFAR input scale 25.6
    per layer (÷√(L+1)) in the CCNN parameterisation (2π ω₀ γ); the CCNN configs tune ω₀ per task (hundreds to
    thousands) — pass ``omega_0`` to use them. Causal (1-D sequence) mode is not part of this grid operator.
    """


@OPS.register("flexconv", kind="grid", dims=(1, 2, 3), papers=("flexconv",), linear=True, dynamic=False)
class FlexConv(_ContinuousConv):
    """FlexConv (S27, FlexConv: Continuous Kernel Convolutions with Differentiable Kernel Sizes).

    A :class:`CKConv` (same kernel networks and FFT path) whose kernel is multiplied by a learnable Gaussian mask
    ``m(p) = Π_d exp(-½ ((p_d − μ_d) / σ_d)²)`` with ``μ = 0`` (fixed, as the official ``learn_mean=False``) and
    learnable widths ``σ`` (``mask_width``, initialised to ``mask_init`` = 0.075 as in every official config):
    ``σ`` is the kernel's differentiable size. MAGNet is the default kernel net, with its Gabor centres drawn
    in ``±1.667 · mask_init`` (official). Departure: no dynamic cropping — the kernel is always sampled on the
    full ``kernel_size`` grid (the official code crops taps where the mask falls below 0.1 for speed, which
    drops those small taps).
    """

    def __init__(
        self,
        in_channels,
        out_channels,
        kernel_size=3,
        stride=1,
        *,
        dim=2,
        bias=True,
        kernel_net: str = "magnet",
        hidden: int = 32,
        no_layers: int = 3,
        omega_0: float | None = None,
        separable: bool = False,
        fft: bool | None = None,
        mask_init: float = 0.075,
    ):
        name = type(self).registry_name
        if not is_number(mask_init) or mask_init <= 0:
            raise ValueError(f"{name}: mask_init must be a positive number (initial Gaussian σ), got {mask_init!r}")
        self._mask_init = float(mask_init)
        super().__init__(
            in_channels,
            out_channels,
            kernel_size,
            stride,
            dim=dim,
            bias=bias,
            kernel_net=kernel_net,
            hidden=hidden,
            no_layers=no_layers,
            omega_0=omega_0,
            separable=separable,
            fft=fft,
        )
        self.mask_width = nn.Parameter(torch.full((dim,), self._mask_init))
        self.register_buffer("mask_mean", torch.zeros(dim), persistent=False)

    def init_spatial_value(self) -> float:
        return 1.667 * self._mask_init

    def mask(self, positions: Tensor) -> Tensor:
        """Gaussian mask ``(*size)`` at ``positions (*size, d)``."""
        scaled = (positions - self.mask_mean) / self.mask_width  # (*size, d)
        return torch.exp(-0.5 * (scaled**2).sum(-1))

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, mask_init={self._mask_init}"
