"""Truly scale-equivariant Fourier layers (S103): anti-aliased discrete down-scaling, spectral conv, nonlinearity.

Everything lives on the discrete Fourier coefficients with the "forward" normalisation
``X[f] = (1/S) sum_n x[n] exp(-2 pi i f n / S)``, under which a signal and its down-scaled copies share
coefficients. A resolution ``S`` represents the frequencies ``|f| <= (S - 1) // 2`` on every axis (the
Nyquist bin of an even size is aliased, so it is dropped). Down-scaling ``S -> M`` keeps the frequencies
that ``M`` represents and nothing else (an ideal anti-aliasing filter), so ``D_{M->L} D_{S->M} = D_{S->L}``.
A layer ``f`` is scale-equivariant when ``f(D_M x) = D_M f(x)``: the spectral conv is, because its filter is
indexed by the absolute frequency; the nonlinearity is, because the output band first representable at
resolution ``r`` is computed from the input down-scaled to ``r`` only.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from convzoo.core.conv import conv_nd
from convzoo.core.init import conv_weight
from convzoo.core.validate import check_int, is_int, ntuple
from convzoo.ops._layout import memory_format
from convzoo.ops.base import Op
from convzoo.registry import LAYERS, OPS

__all__ = ["fourier_downscale", "ScaleEquivariantConv", "ScaleEquivariantNonlinearity"]


def _frequencies(size: int, device=None) -> Tensor:
    """Integer frequency of each FFT bin of a length-``size`` axis: ``0, 1, ..., -2, -1``."""
    return torch.fft.fftfreq(size, d=1.0 / size, device=device).round().long()


def _resize_spectrum(spectrum: Tensor, axis: int, size: int, keep: int) -> Tensor:
    """Coefficients ``|f| <= keep`` of ``spectrum`` along ``axis`` placed in an axis of length ``size``, rest zero."""
    bins = torch.cat([torch.arange(keep + 1), torch.arange(-keep, 0)])  # the kept frequencies
    source = bins % spectrum.shape[axis]
    target = bins % size
    shape = list(spectrum.shape)
    shape[axis] = size
    out = spectrum.new_zeros(shape)
    return out.index_copy_(axis, target.to(out.device), spectrum.index_select(axis, source.to(spectrum.device)))


def _float(x: Tensor) -> Tensor:
    """FFTs need float32/float64: half-precision inputs are computed in float32 and cast back by the caller."""
    return x if x.dtype in (torch.float32, torch.float64) else x.float()


def _real_like(values: Tensor, like: Tensor) -> Tensor:
    """The real part of complex ``values`` (a strided view) as one dense copy in ``like``'s dtype and memory format."""
    return values.real.to(like.dtype, memory_format=memory_format(like), copy=True)


def fourier_downscale(x: Tensor, size: int | Sequence[int]) -> Tensor:
    """Anti-aliased discrete down-scaling ``(N, C, *S) -> (N, C, *size)`` by truncating the Fourier coefficients.

    Keeps ``|f| <= (size - 1) // 2`` on each axis (forward-normalised, so values keep their scale);
    ``size`` is an int (every axis) or one int per axis, each between 1 and the axis length. The result is
    dense, in ``x``'s dtype and memory format.
    """
    spatial = x.dim() - 2
    sizes = ntuple(size, spatial, "size", "fourier_downscale")
    if any(not 1 <= m <= s for m, s in zip(sizes, x.shape[2:], strict=True)):
        raise ValueError(f"fourier_downscale: size must lie in [1, input size] per axis, got {sizes} for {x.shape[2:]}")
    axes = tuple(range(2, x.dim()))
    spectrum = torch.fft.fftn(_float(x), dim=axes, norm="forward")  # (N, C, *S)
    for axis, m in zip(axes, sizes, strict=True):
        spectrum = _resize_spectrum(spectrum, axis, m, (m - 1) // 2)  # (N, C, ..., m, ...)
    return _real_like(torch.fft.ifftn(spectrum, dim=axes, norm="forward"), x)


@OPS.register("scale_conv", kind="equivariant", dims=(1, 2, 3), papers=("scale-equivariant",))
class ScaleEquivariantConv(Op):
    """S103 "Truly Scale-Equivariant Deep Nets with Fourier Layers": spectral conv with a resolution-free filter.

    ``(N, C_in, *S) -> (N, C_out, *ceil(S/stride))``, periodic (circular) boundary::

        Y[f] = W[f] X[f]  for |f_i| <= min((S_i - 1) // 2, (max_size - 1) // 2),  0 for other f
        W[f] = sum_n w[n] exp(+2 pi i f·n / max_size)       # w: real k^d kernel, n in [-k//2, k//2]^d
        y    = IDFT(Y) + V x + b                             # V: 1x1 (pointwise) path, as the official model
        y    = D_{ceil(S/stride)}(y)                         # stride: anti-aliased down-scaling

    ``W`` is the spectrum of a spatially localised kernel at the reference resolution ``max_size`` (the
    paper's "localized" spectral filter); it is indexed by absolute frequency, so ``f(D_M x) = D_M f(x)``.
    At ``S = max_size`` odd, the layer is a circular cross-correlation with ``w``. Defaults from the official
    MNIST model (ashiq24/Scale_Equivarinat_Fourier_Layer): ``max_size = 28`` (global modes), kernel 5 (local
    modes). Departure: the official filter is a complex local spectrum mapped by a Dirichlet-kernel matrix;
    here it is the exact DFT of a real spatial kernel, so outputs are real without taking a real part.
    Linear but not a zero-padded conv, so it has no ``dense_kernel``.
    """

    def __init__(self, in_channels, out_channels, kernel_size=5, stride=1, *, dim=2, bias=True, max_size: int = 28):
        super().__init__(in_channels, out_channels, kernel_size, stride, dim=dim, bias=bias)
        name = type(self).registry_name
        if not is_int(max_size) or max_size < max(self.kernel_size):
            raise ValueError(f"{name}: max_size must be an int >= kernel_size, got {max_size!r}")
        self.max_size = max_size
        self.weight, self.bias = conv_weight(out_channels, in_channels, self.kernel_size, bias)
        self.pointwise = nn.Parameter(torch.empty(out_channels, in_channels))
        nn.init.kaiming_uniform_(self.pointwise, a=math.sqrt(5))

    def filter_spectrum(self, size: Sequence[int]) -> Tensor:
        """``W[f]`` (C_out, C_in, *size) on the FFT grid of a ``size`` input, zero outside the kept band."""
        spectrum = self.weight.to(torch.complex128 if self.weight.dtype == torch.float64 else torch.complex64)
        for axis, (s, k) in enumerate(zip(size, self.kernel_size, strict=True)):
            freq = _frequencies(s, self.weight.device)
            keep = (freq.abs() <= min((s - 1) // 2, (self.max_size - 1) // 2)).to(spectrum.dtype)
            offsets = torch.arange(k, device=self.weight.device) - k // 2
            phase = 2 * math.pi * torch.outer(freq, offsets).to(spectrum.real.dtype) / self.max_size
            basis = torch.polar(torch.ones_like(phase), phase) * keep[:, None]  # (s, k)
            spectrum = (spectrum.movedim(2 + axis, -1) @ basis.T).movedim(-1, 2 + axis)  # k -> s on this axis
        return spectrum

    def forward(self, x: Tensor) -> Tensor:
        self.check_input(x)
        xf = _float(x)
        axes = tuple(range(2, x.dim()))
        letters = "xyz"[: self.dim]
        spectrum = torch.fft.fftn(xf, dim=axes, norm="forward")  # (N, C_in, *S)
        w = self.filter_spectrum(x.shape[2:]).to(spectrum.dtype)  # (C_out, C_in, *S)
        mixed = torch.einsum(f"ni{letters},oi{letters}->no{letters}", spectrum, w)  # (N, C_out, *S)
        # the pointwise path V x + b as a 1×1 conv runs in x's memory format; as the first term of the sum it
        # sets the layout of y (the FFTs write contiguous tensors)
        pointwise = self.pointwise.to(xf.dtype).view(*self.pointwise.shape, *(1,) * self.dim)  # (C_out, C_in, 1..)
        bias = None if self.bias is None else self.bias.to(xf.dtype)
        y = conv_nd(xf, pointwise, bias) + torch.fft.ifftn(mixed, dim=axes, norm="forward").real  # (N, C_out, *S)
        if any(s > 1 for s in self.stride):
            y = fourier_downscale(y, self.output_size(x.shape[2:]))
        return y.to(x.dtype)

    def macs(self, input_size: Sequence[int]) -> int:
        """Real MACs per sample: 4·C_in·C_out·P (complex spectral mixing) + C_in·C_out·P (pointwise path) +
        2·P·log2(P) per channel and FFT (forward on C_in, inverse on C_out, and one more pair for a stride),
        with ``P = prod(S)``; the filter's spectrum depends on the weights only and is not counted."""
        pixels = math.prod(input_size)
        fft = 2 * pixels * max(math.log2(pixels), 1.0)
        ffts = (self.in_channels + self.out_channels) * fft
        if any(s > 1 for s in self.stride):
            ffts += 2 * self.out_channels * fft
        return int(5 * self.in_channels * self.out_channels * pixels + ffts)

    def extra_repr(self) -> str:
        return super().extra_repr() + f", max_size={self.max_size}"


@LAYERS.register("scale_eq_nonlinearity", kind="layer", dims=(1, 2, 3), papers=("scale-equivariant",))
class ScaleEquivariantNonlinearity(nn.Module):
    """S103 "Truly Scale-Equivariant Deep Nets with Fourier Layers": nonlinearity taking each band from its resolution.

    ``(N, C, *[S]*d) -> same`` (equal sizes on every axis: one resolution). With ``j_b = (base_size - 1) // 2``::

        Y[f] = DFT_r( act(D_r x) )[f],  r = 2·max(j_b, max_i |f_i|) + 1,   for max_i |f_i| <= (S - 1) // 2

    i.e. the band ``max |f| <= j_b`` comes from ``act`` applied at resolution ``2 j_b + 1`` and each ring
    ``max |f| = j`` beyond it from ``act`` at resolution ``2 j + 1``. Down-scaling to ``M >= base_size`` keeps
    exactly the bands computed from resolutions ``<= M``, so ``f(D_M x) = D_M f(x)`` to float precision.
    Defaults: ReLU, ``base_size = 5`` (the official MNIST model's base resolution 6 at an even size, whose
    Nyquist bin this formulation drops). Departure: the official layer may normalise per resolution
    (instance norm); that is left to the caller here. Cost: ``(S - base_size) / 2 + 1`` activations + FFTs.
    """

    def __init__(self, activation: Callable[[Tensor], Tensor] = F.relu, *, base_size: int = 5) -> None:
        super().__init__()
        self.activation = activation
        self.base_size = check_int(base_size, "base_size", "scale_eq_nonlinearity")

    def forward(self, x: Tensor) -> Tensor:
        sizes = set(x.shape[2:])
        if x.dim() < 3 or len(sizes) != 1:
            raise ValueError(
                f"scale_eq_nonlinearity: expected (N, C, *S) with one size on every spatial axis, got {tuple(x.shape)}"
            )
        xf = _float(x)
        size = x.shape[2]
        axes = tuple(range(2, x.dim()))
        top = (size - 1) // 2
        base = min((self.base_size - 1) // 2, top)
        ring = torch.zeros((), dtype=torch.long, device=x.device)  # max_i |f_i| on the output grid
        for _ in axes:
            ring = torch.maximum(ring.unsqueeze(-1), _frequencies(size, x.device).abs())  # (*S so far)
        out = torch.zeros(xf.shape, dtype=torch.complex128 if xf.dtype == torch.float64 else torch.complex64)
        out = out.to(x.device)
        for j in range(base, top + 1):
            resolution = 2 * j + 1
            activated = self.activation(fourier_downscale(xf, resolution))  # (N, C, *[r]*d)
            spectrum = torch.fft.fftn(activated, dim=axes, norm="forward")
            for axis in axes:
                spectrum = _resize_spectrum(spectrum, axis, size, j)  # back on the S grid, |f| <= j
            band = (ring <= j) if j == base else (ring == j)
            out = out + spectrum * band.to(spectrum.real.dtype)
        return _real_like(torch.fft.ifftn(out, dim=axes, norm="forward"), x)

    def extra_repr(self) -> str:
        return f"activation={getattr(self.activation, '__name__', self.activation)}, base_size={self.base_size}"
