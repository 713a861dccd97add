"""One execution path for large depthwise kernels: direct, width strips or FFT, chosen by measured thresholds (N-d).

PyTorch's CPU depthwise ``conv2d`` (oneDNN) is fast only while the kernel's *width* (last axis) is at most 13.
Measured here (2-core x86 shared with other jobs, torch 2.13, k×k depthwise, 96 channels at 56², batch 8; medians
of 3-7 interleaved runs, so ±30 %): 31×13 ≈ 10 ms, 13×13 ≈ 5-11 ms, 14×14 ≈ 130 ms, 13×31 ≈ 250 ms: the height
does not matter, the width does. The three exact paths, ms at 2 threads (1 thread in brackets):

====  ============  ==================================  ===========
k     direct        strips (≤ 13 wide, shifted, summed)  FFT
====  ============  ==================================  ===========
15    134           14 (27)                             22 (61)
17    174           10                                  11
21    267           18 (27)                             26 (56)
31    580           25 (59)                             22 (93)
41    937           41 (77)                             18 (56)
51    1334          62 (118)                            61 (156)
====  ============  ==================================  ===========

So :func:`depthwise_conv` runs 2-d kernels up to :data:`STRIP_WIDTH` = 13 wide directly; wider ones as full-height
strips at most 13 wide (each a direct conv on a shifted window of the padded input: exact for any stride and
dilation) while the dilated reach is below :data:`FFT_MIN_WIDTH` = 37 or the stride is not 1 (the FFT computes
every position), and by FFT (``rfftn`` of the padded input and the kernel over a 2·3·5-smooth size) from there on:
at 31 the two tie, at 41 the FFT wins. 1-d and 3-d depthwise convs showed no cliff (``conv1d`` k = 13, 15, 31: 7,
16, 26 ms at 8×96×3136; ``conv3d`` 3×3×15 ≈ 3×3×13), so they run directly unless a path is forced; non-CPU
tensors always run directly (the cliff is a CPU-kernel limit).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from convzoo.core.conv import conv_nd
from convzoo.core.validate import ntuple

__all__ = [
    "DepthwiseConv1d",
    "DepthwiseConv2d",
    "DepthwiseConv3d",
    "FFT_MIN_WIDTH",
    "PATHS",
    "STRIP_WIDTH",
    "choose_path",
    "depthwise_conv",
    "fft_size",
    "large_kernel_module",
]

_CONV_MODULE = {1: nn.Conv1d, 2: nn.Conv2d, 3: nn.Conv3d}
PATHS = ("direct", "strips", "fft")
STRIP_WIDTH = 13  # widest 2-d depthwise kernel that PyTorch's CPU kernel runs fast (14 falls off the cliff)
FFT_MIN_WIDTH = 37  # from this reach on (stride 1) the FFT beats the strips; measured, see the module docstring


def choose_path(x: Tensor, kernel_size: Sequence[int], stride: Sequence[int], dilation: Sequence[int]) -> str:
    """The path :func:`depthwise_conv` takes for input ``x`` ``(N, C, *S)`` and a kernel of ``kernel_size``."""
    if x.device.type != "cpu" or len(kernel_size) != 2:
        return "direct"
    if not x.is_contiguous() and x.is_contiguous(memory_format=torch.channels_last):
        # the width cliff is NCHW's: channels-last depthwise runs wide kernels directly at full speed (Xeon, torch
        # 2.13, 1 thread, 1×96×56², 17×17: direct 2.5 ms, strips 4.3 ms; NCHW direct 55 ms, strips 4.6 ms)
        return "direct"
    width = kernel_size[-1]
    if width <= STRIP_WIDTH:
        return "direct"
    reach = dilation[-1] * (width - 1) + 1  # the FFT pays for the dilated span, the strips only for the taps
    if reach >= FFT_MIN_WIDTH and all(s == 1 for s in stride):
        return "fft"
    return "strips"


def fft_size(length: int) -> int:
    """The smallest 2·3·5-smooth integer ≥ ``length`` (sizes pocketfft transforms fastest)."""
    size = length
    while True:
        rest = size
        for prime in (2, 3, 5):
            while rest % prime == 0:
                rest //= prime
        if rest == 1:
            return size
        size += 1


def _direct(x: Tensor, weight: Tensor, bias: Tensor | None, **kwargs) -> Tensor:
    """PyTorch's own depthwise conv of ``x`` ``(N, C, *S)`` with ``weight`` ``(C, 1, *k)``."""
    if x.shape[1] == 1 and weight.dim() == 5:
        # PyTorch's CPU (oneDNN) groups=1 conv3d backward gives wrong weight gradients for one-channel convs with
        # large kernels and stride 2 (torch 2.13; see dilated_reparam). Two identical groups take the depthwise
        # path; channel 0 is the answer.
        x = x.expand(-1, 2, *x.shape[2:])  # (N, 2, *S)
        weight = weight.expand(2, *weight.shape[1:])  # (2, 1, *k)
        bias = None if bias is None else bias.expand(2)
        return conv_nd(x, weight, bias, groups=2, **kwargs)[:, :1]  # (N, 1, *S')
    return conv_nd(x, weight, bias, groups=x.shape[1], **kwargs)


def _pad(x: Tensor, padding: Sequence[int]) -> Tensor:
    """Zero-pad every spatial axis of ``x`` ``(N, C, *S)`` by ``padding[i]`` on both sides."""
    return F.pad(x, [p for pad in reversed(padding) for p in (pad, pad)])  # (N, C, *(S + 2p))


def _strips(x: Tensor, weight: Tensor, stride, dilation, out_size) -> Tensor:
    """Sum of direct convs of full-height, ≤ STRIP_WIDTH-wide kernel strips; ``x`` is already padded."""
    width = weight.shape[-1]
    count = -(-width // STRIP_WIDTH)
    bounds = [round(i * width / count) for i in range(count + 1)]  # near-equal strips, e.g. 31 -> 10, 11, 10
    out = None
    for start, stop in zip(bounds[:-1], bounds[1:], strict=True):
        # the strip's taps sit at offsets start..stop-1 of the kernel: shift the window by dilation · start
        window = []
        for axis, (kernel, s, d, o) in enumerate(zip(weight.shape[2:], stride, dilation, out_size, strict=True)):
            first = d * start if axis == len(stride) - 1 else 0
            taps = stop - start if axis == len(stride) - 1 else kernel
            window.append(slice(first, first + (o - 1) * s + d * (taps - 1) + 1))
        part = _direct(x[(..., *window)], weight[..., start:stop], None, stride=stride, dilation=dilation)
        out = part if out is None else out + part
    return out


def _fft(x: Tensor, weight: Tensor, stride, dilation, out_size) -> Tensor:
    """Cross-correlation by FFT of the padded ``x`` ``(N, C, *L)`` with the (dilated) kernel, then the stride.

    A circular correlation over ``M ≥ L`` points equals the linear one at every output ``n ≤ L − reach``, because
    ``n + j`` never wraps; those are exactly the valid outputs.
    """
    dim = weight.dim() - 2
    if any(d > 1 for d in dilation):
        dense = weight.new_zeros(
            *weight.shape[:2], *(d * (k - 1) + 1 for k, d in zip(weight.shape[2:], dilation, strict=True))
        )
        dense[(slice(None), slice(None), *(slice(None, None, d) for d in dilation))] = weight  # (C, 1, *reach)
        weight = dense
    axes = tuple(range(-dim, 0))
    sizes = [fft_size(n) for n in x.shape[2:]]
    spectrum = torch.fft.rfftn(x, s=sizes, dim=axes)  # (N, C, *M[:-1], M[-1] // 2 + 1)
    kernel_spectrum = torch.fft.rfftn(weight[:, 0], s=sizes, dim=axes)  # (C, *M[:-1], M[-1] // 2 + 1)
    full = torch.fft.irfftn(spectrum * kernel_spectrum.conj(), s=sizes, dim=axes)  # (N, C, *M)
    keep = tuple(slice(0, (o - 1) * s + 1, s) for o, s in zip(out_size, stride, strict=True))
    return full[(..., *keep)]  # (N, C, *out_size)


def depthwise_conv(
    x: Tensor,
    weight: Tensor,
    bias: Tensor | None = None,
    stride: int | Sequence[int] = 1,
    padding: int | Sequence[int] = 0,
    dilation: int | Sequence[int] = 1,
    *,
    path: str | None = None,
) -> Tensor:
    """``F.conv{d}d(x, weight, bias, stride, padding, dilation, groups=C)`` by the fastest exact path.

    ``x`` is ``(N, C, *S)``, ``weight`` ``(C, 1, *k)`` (one kernel per channel), ``bias`` ``(C,)`` or ``None``;
    output ``(N, C, *((S + 2p − d(k − 1) − 1) // s + 1))``. ``path`` forces ``"direct"``, ``"strips"`` or
    ``"fft"``; ``None`` takes :func:`choose_path`. Every path is differentiable through ordinary autograd ops and
    equals the direct conv to float rounding.
    """
    dim = weight.dim() - 2
    if x.dim() != dim + 2 or weight.shape[1] != 1 or weight.shape[0] != x.shape[1]:
        raise ValueError(
            f"depthwise_conv: expected x (N, C, *S) and weight (C, 1, *k) with the same C and {dim} spatial axes, "
            f"got x {tuple(x.shape)} and weight {tuple(weight.shape)}"
        )
    stride = ntuple(stride, dim, "stride", "depthwise_conv")
    padding = ntuple(padding, dim, "padding", "depthwise_conv")
    dilation = ntuple(dilation, dim, "dilation", "depthwise_conv")
    kernel = tuple(weight.shape[2:])
    if path is None:
        path = choose_path(x, kernel, stride, dilation)
    if path not in PATHS:
        raise ValueError(f"depthwise_conv: path must be one of {', '.join(PATHS)} or None, got {path!r}")
    if path == "direct":
        return _direct(x, weight, bias, stride=stride, padding=padding, dilation=dilation)
    padded = _pad(x, padding)  # (N, C, *L)
    out_size = [
        (n - d * (k - 1) - 1) // s + 1 for n, k, s, d in zip(padded.shape[2:], kernel, stride, dilation, strict=True)
    ]
    if any(o < 1 for o in out_size):
        raise ValueError(f"depthwise_conv: kernel {kernel} (dilation {dilation}) is larger than the padded input")
    run = _strips if path == "strips" else _fft
    out = run(padded, weight, stride, dilation, out_size)  # (N, C, *out_size)
    if bias is not None:
        out = out + bias.view(-1, *([1] * dim))
    return out


class _LargeKernelForward:
    """The forward of a depthwise ``nn.Conv{d}d`` replaced by :func:`depthwise_conv` (mixed into the conv classes)."""

    path: str | None = None

    def forward(self, x: Tensor) -> Tensor:
        path = self.path
        if torch.jit.is_tracing() or torch.onnx.is_in_onnx_export() or torch.compiler.is_compiling():
            path = "direct"  # a graph for another runtime or compiler: one plain conv node, its kernels decide
        return depthwise_conv(x, self.weight, self.bias, self.stride, self.padding, self.dilation, path=path)

    def macs(self, input_size: Sequence[int]) -> int:
        """Per-sample MACs of the direct depthwise conv, whatever path runs: ``C · Π out · Π k``."""
        kernel = self.weight.shape[2:]
        out = [
            (n + 2 * p - d * (k - 1) - 1) // s + 1
            for n, p, d, k, s in zip(input_size, self.padding, self.dilation, kernel, self.stride, strict=True)
        ]
        return self.weight.shape[0] * math.prod(out) * math.prod(kernel)

    def extra_repr(self) -> str:
        return super().extra_repr() + f", path={self.path or 'measured choice'}"


class DepthwiseConv1d(_LargeKernelForward, nn.Conv1d):
    """``nn.Conv1d`` (depthwise) whose forward is :func:`depthwise_conv`."""


class DepthwiseConv2d(_LargeKernelForward, nn.Conv2d):
    """``nn.Conv2d`` (depthwise) whose forward is :func:`depthwise_conv`."""


class DepthwiseConv3d(_LargeKernelForward, nn.Conv3d):
    """``nn.Conv3d`` (depthwise) whose forward is :func:`depthwise_conv`."""


_LARGE_KERNEL_MODULE = {1: DepthwiseConv1d, 2: DepthwiseConv2d, 3: DepthwiseConv3d}


def large_kernel_module(conv: nn.Module, path: str | None = None) -> nn.Module:
    """The depthwise ``nn.Conv{d}d`` ``conv`` as a :class:`DepthwiseConv{d}d` run by :func:`depthwise_conv`.

    The result is still an ``nn.Conv{d}d`` (same attributes, ``isinstance`` checks and state dict) and shares
    ``conv``'s parameters; ``path`` forces one path (``None``: the measured choice).
    """
    channels, dim = conv.in_channels, conv.weight.dim() - 2
    if conv.groups != channels or conv.out_channels != channels or conv.padding_mode != "zeros":
        raise ValueError(f"depthwise_conv: expected a depthwise conv (groups = in = out channels), got {conv}")
    if isinstance(conv.padding, str):
        raise ValueError(f"depthwise_conv: expected integer padding, got padding={conv.padding!r}")
    if path is not None and path not in PATHS:
        raise ValueError(f"depthwise_conv: path must be one of {', '.join(PATHS)} or None, got {path!r}")
    module = _LARGE_KERNEL_MODULE[dim].__new__(_LARGE_KERNEL_MODULE[dim])
    module.__dict__.update(conv.__dict__)  # the same parameters, buffers, hooks and conv attributes
    for registry in ("_parameters", "_buffers", "_modules"):
        setattr(module, registry, dict(getattr(conv, registry)))  # own tables holding the same tensors
    module.path = path
    return module
