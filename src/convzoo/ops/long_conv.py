"""Hyena-style implicit long convolution (S84), applied causally by FFT in O(L log L)."""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from convzoo.core.validate import check_int, check_odd
from convzoo.ops.base import ConvSpec, Op
from convzoo.registry import OPS

__all__ = ["ExplicitCausalConv", "HyenaFilter", "LongConv", "direct_causal_conv", "fft_causal_conv"]


def _compute_dtype(x: Tensor) -> torch.dtype:
    # torch.fft has no bfloat16/float16 kernels on CPU: half inputs are convolved in float32 and cast back
    return x.dtype if x.dtype in (torch.float32, torch.float64) else torch.float32


def fft_causal_conv(x: Tensor, filters: Tensor, skip: Tensor | None = None) -> Tensor:
    """Depthwise causal convolution by FFT: ``y[n, c, t] = sum_{k <= t} h[c, k] x[n, c, t - k] + D[c] x[n, c, t]``.

    ``x`` is ``(N, C, L)``, ``filters`` ``h`` is ``(C, K)`` (taps beyond ``L`` are never used; a filter shorter than
    ``L`` is zero beyond ``K``), ``skip`` ``D`` is ``(C,)`` or ``None``. The transforms are zero-padded to a power of
    two ≥ ``L + min(K, L) - 1`` so the circular convolution equals the linear one on the first ``L`` outputs.
    """
    length = x.shape[-1]
    taps = min(filters.shape[-1], length)
    fft_size = 1 << (length + taps - 2).bit_length()  # power of two ≥ L + taps - 1
    dtype = _compute_dtype(x)
    x_f = torch.fft.rfft(x.to(dtype), n=fft_size)  # (N, C, fft_size // 2 + 1)
    h_f = torch.fft.rfft(filters[:, :taps].to(dtype), n=fft_size)  # (C, fft_size // 2 + 1)
    y = torch.fft.irfft(x_f * h_f, n=fft_size)[..., :length]  # (N, C, L)
    if skip is not None:
        y = y + x.to(dtype) * skip.to(dtype)[:, None]
    return y.to(x.dtype)


def direct_causal_conv(x: Tensor, filters: Tensor, skip: Tensor | None = None) -> Tensor:
    """The same map as :func:`fft_causal_conv`, computed as a left-padded depthwise ``F.conv1d`` in O(L·K)."""
    channels, length = x.shape[1], x.shape[-1]
    taps = min(filters.shape[-1], length)
    weight = filters[:, :taps].flip(-1)[:, None].to(x.dtype)  # (C, 1, taps): conv1d correlates, so flip
    y = F.conv1d(F.pad(x, (taps - 1, 0)), weight, groups=channels)  # (N, C, L)
    if skip is not None:
        y = y + x * skip.to(x.dtype)[:, None]
    return y


class Sin(nn.Module):
    """``sin(freq * x)`` with a learnable frequency per feature (Hyena's periodic activation)."""

    def __init__(self, features: int, freq: float) -> None:
        super().__init__()
        self.freq = nn.Parameter(torch.full((1, features), float(freq)))

    def forward(self, x: Tensor) -> Tensor:
        return torch.sin(self.freq * x)


class HyenaFilter(nn.Module):
    """Implicit filter ``h = MLP(PE(t)) · exp(-|δ_c| t)``: ``(C, K)`` taps generated from ``K`` positions.

    ``PE(t) = [t, cos(2π f_b s / K), -sin(2π f_b s / K)]`` with ``t = s / (K - 1)`` ∈ [0, 1] and ``b`` bands
    ``f_b = linspace(1e-4, bands - 1, bands)``, ``bands = (emb_dim - 1) // 2``; the MLP is Linear(emb_dim, order) →
    Sin, then ``inner_layers`` × (Linear(order, order) → Sin) sharing one Sin, then Linear(order, C, no bias); the
    decay rates ``δ_c = linspace(log(target) / slow_decay_pct, log(target) / fast_decay_pct, C)`` are fixed.
    """

    def __init__(
        self,
        channels: int,
        length: int,
        *,
        order: int = 64,
        emb_dim: int = 3,
        inner_layers: int = 2,
        sine_freq: float = 1.0,
        fast_decay_pct: float = 0.3,
        slow_decay_pct: float = 1.5,
        decay_target: float = 1e-2,
    ) -> None:
        super().__init__()
        steps = torch.arange(length, dtype=torch.float64)
        t = torch.linspace(0, 1, length, dtype=torch.float64)[:, None]  # (K, 1)
        bands = (emb_dim - 1) // 2
        freqs = torch.linspace(1e-4, bands - 1, bands, dtype=torch.float64)  # (bands,)
        angle = 2 * math.pi * steps[:, None] * freqs / length  # (K, bands)
        embedding = torch.cat([t, torch.cos(angle), -torch.sin(angle)], dim=-1)  # (K, emb_dim)
        self.register_buffer("embedding", embedding.float(), persistent=False)
        self.register_buffer("t", t.float(), persistent=False)
        deltas = torch.linspace(
            math.log(decay_target) / slow_decay_pct, math.log(decay_target) / fast_decay_pct, channels
        )
        self.register_buffer("deltas", deltas[None], persistent=False)  # (1, C)
        sin = Sin(order, sine_freq)
        layers: list[nn.Module] = [nn.Linear(emb_dim, order), sin]
        for _ in range(inner_layers):
            layers += [nn.Linear(order, order), sin]
        layers.append(nn.Linear(order, channels, bias=False))
        self.mlp = nn.Sequential(*layers)

    def forward(self) -> Tensor:
        h = self.mlp(self.embedding)  # (K, C)
        h = h * torch.exp(-self.t * self.deltas.abs())  # (K, C) exponential decay window
        return h.t()  # (C, K)


@OPS.register("long_conv", kind="sequence", dims=(1,), papers=("hyena-distill",), linear=True)
class LongConv(Op):
    """S84 Laughing Hyena Distillery (the Hyena long convolution it distils): implicit filter applied by FFT.

    Input ``(N, C, L)`` → ``(N, C, L)``, causal and depthwise: ``y_c = h_c * x_c + D_c x_c`` with the implicit
    filter ``h`` of :class:`HyenaFilter` (``kernel_size`` = its length, Hyena's ``l_max``; it is zero beyond) and the
    skip ``D`` (``bias=True``, Hyena's filter bias, N(0, 1) init). Cost O(L log L) by FFT, equal to the direct causal
    convolution (:meth:`to_explicit`). Defaults from HazyResearch/safari ``HyenaFilter``/``HyenaOperator``: MLP width
    (``filter_order``) 64, ``emb_dim`` 3, 2 inner layers, Sin frequency 1, decay 0.3/1.5/1e-2.
    Departures: the positional embedding is a fixed buffer (safari trains it at lr 1e-5), and ``t`` spans the
    filter length ``K`` rather than the model's ``l_max``; the op holds the convolution only, not Hyena's gating
    and projections. Stride 1 only.
    """

    same_channels = True
    odd_kernel = False
    max_stride = 1
    contract_kernel_size = 16

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int | Sequence[int] = 1024,
        stride: int | Sequence[int] = 1,
        *,
        dim: int = 1,
        bias: bool = True,
        filter_order: int = 64,
        emb_dim: int = 3,
        inner_layers: int = 2,
        sine_freq: float = 1.0,
        fast_decay_pct: float = 0.3,
        slow_decay_pct: float = 1.5,
        decay_target: float = 1e-2,
    ) -> None:
        super().__init__(in_channels, out_channels, kernel_size, stride, dim=dim, bias=bias)
        name = type(self).registry_name
        check_odd(emb_dim, "emb_dim", name, low=3)  # time, cosine and sine bands
        check_int(filter_order, "filter_order", name)
        check_int(inner_layers, "inner_layers", name, low=0)
        if not 0 < decay_target < 1 or fast_decay_pct <= 0 or slow_decay_pct <= 0:
            raise ValueError(
                f"{name}: decay_target must lie in (0, 1) and the decay percentages be positive, got "
                f"{decay_target!r}, {fast_decay_pct!r}, {slow_decay_pct!r}"
            )
        self.filter_fn = HyenaFilter(
            in_channels,
            self.kernel_size[0],
            order=filter_order,
            emb_dim=emb_dim,
            inner_layers=inner_layers,
            sine_freq=sine_freq,
            fast_decay_pct=fast_decay_pct,
            slow_decay_pct=slow_decay_pct,
            decay_target=decay_target,
        )
        self.skip = nn.Parameter(torch.randn(in_channels)) if bias else None

    def filters(self) -> Tensor:
        """The long filter ``h``: ``(C, K)``."""
        return self.filter_fn()

    def forward(self, x: Tensor) -> Tensor:
        self.check_input(x)
        return fft_causal_conv(x, self.filters(), self.skip)

    def impulse_response(self) -> Tensor:
        """``h`` with the skip folded into tap 0: the whole causal response, ``(C, K)``."""
        h = self.filters()
        if self.skip is None:
            return h
        return torch.cat([h[:, :1] + self.skip[:, None], h[:, 1:]], dim=1)  # (C, K)

    def dense_kernel(self) -> ConvSpec:
        """Causal taps as a symmetric-padded depthwise kernel of length ``2K - 1`` whose right half is zero."""
        with torch.no_grad():
            h = self.impulse_response()  # (C, K)
            taps = h.shape[-1]
            weight = torch.cat([h.flip(-1), h.new_zeros(h.shape[0], taps - 1)], dim=1)[:, None]  # (C, 1, 2K - 1)
        return ConvSpec(weight, None, (1,), (taps - 1,), (1,), groups=self.in_channels)

    def to_explicit(self, method: str = "fft") -> ExplicitCausalConv:
        """The same map with the filter materialised once: by FFT, or by direct causal ``F.conv1d`` (O(L·K))."""
        with torch.no_grad():
            return ExplicitCausalConv(self.impulse_response().detach().clone(), method)

    def macs(self, input_size: Sequence[int]) -> int:
        """Per sample: filter MLP over K positions, plus per channel three real FFTs (≈ n log2 n each, n the FFT
        size) and n/2 + 1 complex products (4 MACs each); an estimate, since the flop counter cannot see FFTs."""
        length = input_size[0]
        taps = min(self.kernel_size[0], length)
        fft_size = 1 << (length + taps - 2).bit_length()
        mlp = self.kernel_size[0] * sum(m.weight.numel() for m in self.filter_fn.mlp if isinstance(m, nn.Linear))
        per_channel = 3 * fft_size * max(1, int(math.log2(fft_size))) + 4 * (fft_size // 2 + 1)
        return mlp + self.in_channels * per_channel

    def extra_repr(self) -> str:
        return f"{self.in_channels}, filter_length={self.kernel_size[0]}, skip={self.skip is not None}, fft"


class ExplicitCausalConv(nn.Module):
    """Depthwise causal convolution with an explicit ``(C, K)`` response (skip folded into tap 0), applied by
    ``method``: ``"fft"`` (:func:`fft_causal_conv`, O(L log L)) or ``"direct"`` (:func:`direct_causal_conv`)."""

    methods = ("fft", "direct")

    def __init__(self, response: Tensor, method: str = "fft") -> None:
        super().__init__()
        if method not in self.methods:
            raise ValueError(f"long_conv: method must be one of {', '.join(self.methods)}, got {method!r}")
        self.method = method
        self.register_buffer("response", response, persistent=False)

    def forward(self, x: Tensor) -> Tensor:
        conv = fft_causal_conv if self.method == "fft" else direct_causal_conv
        return conv(x, self.response)

    def macs(self, input_size: Sequence[int]) -> int:
        """Per sample: direct, ``C Σ_t min(t + 1, K)`` products; FFT, the estimate of :meth:`LongConv.macs`."""
        channels, length = self.response.shape[0], input_size[0]
        taps = min(self.response.shape[-1], length)
        if self.method == "direct":
            return channels * (taps * length - taps * (taps - 1) // 2)
        fft_size = 1 << (length + taps - 2).bit_length()
        return channels * (3 * fft_size * max(1, int(math.log2(fft_size))) + 4 * (fft_size // 2 + 1))

    def extra_repr(self) -> str:
        return f"{self.response.shape[0]}, filter_length={self.response.shape[-1]}, method={self.method}"
