"""N-d convolution helpers: one entry point every operator calls, and "same" padding.

``conv_nd`` is also where known upstream (oneDNN) bugs are routed around, so no operator has to
know about them; ``docs/known-issues.md`` describes each one and how to reproduce it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from convzoo.core.validate import ntuple

__all__ = ["CONV_FUNCTIONS", "conv_nd", "run_conv", "same_padding"]

CONV_FUNCTIONS = {1: F.conv1d, 2: F.conv2d, 3: F.conv3d}
_REDUCED = (torch.bfloat16, torch.float16)


def _padding_past_input(x: Tensor, padding: Any, dim: int) -> tuple[int, ...] | None:
    """The padding as a ``dim``-tuple when some side pads at least as far as the input reaches, else ``None``."""
    if isinstance(padding, str):
        return None
    pads = (padding,) * dim if isinstance(padding, int) else tuple(padding)
    return pads if any(p > 0 and s <= p for p, s in zip(pads, x.shape[2:], strict=True)) else None


def conv_nd(x: Tensor, weight: Tensor, bias: Tensor | None = None, **kwargs: Any) -> Tensor:
    """``F.conv{dim}d`` chosen from the weight's rank: weight ``(C_out, C_in / groups, *k)``.

    On the CPU, PyTorch's oneDNN ``conv3d`` backward returns wrong weight gradients (or corrupts the
    heap) for strided single-group convs with one or two input channels (seen with torch 2.13, e.g. a
    7³ kernel at stride 2 on a 7³ input). Those run at stride 1 and are subsampled, which is exact;
    depthwise convs are not affected.

    On CPUs with AMX (Intel Sapphire Rapids and later), oneDNN's reduced-precision (bfloat16, float16) grouped
    ``conv3d`` returns garbage (errors up to 1e38) when the padding reaches past the input, e.g. a 1³ input
    padded by 2 (``docs/known-issues.md``). Those inputs are zero-padded explicitly and convolved with padding
    0, which is the same sum.

    A ``conv3d`` whose kernel is 1 on the last two axes may run on PyTorch's slow CPU kernel (always in float64;
    in float32 when single-threaded with a batch under 16), which writes a contiguous output for a
    channels-last-3d input. For such an input it runs as the ``conv2d`` over ``(D, H·W)`` it equals (a view,
    no copy), which keeps the layout.
    """
    dim = weight.dim() - 2
    padding = kwargs.get("padding", 0)
    if dim == 3 and x.dtype in _REDUCED and x.device.type == "cpu":
        pads = _padding_past_input(x, padding, dim)
        if pads is not None:
            x = F.pad(x, [p for p in reversed(pads) for _ in range(2)])  # (N, C, *(S + 2p))
            kwargs = {**kwargs, "padding": 0}
    if dim == 3 and x.device.type == "cpu" and weight.shape[3:] == (1, 1) and _is_channels_last_3d(x):
        out = _conv3d_as_conv2d(x, weight, bias, kwargs)
        if out is not None:
            return out
    stride = kwargs.get("stride", 1)
    strides = (stride,) * dim if isinstance(stride, int) else tuple(stride)
    one_group = kwargs.get("groups", 1) == 1
    if dim == 3 and one_group and x.device.type == "cpu" and weight.shape[1] <= 2 and any(s > 1 for s in strides):
        y = F.conv3d(x, weight, bias, **{**kwargs, "stride": 1})
        return y[(..., *(slice(None, None, s) for s in strides))]
    return CONV_FUNCTIONS[dim](x, weight, bias, **kwargs)


def _is_channels_last_3d(x: Tensor) -> bool:
    """Laid out channels-last-3d as PyTorch reads strides: a one-channel tensor is both layouts, and counts as
    channels-last where its channel stride is 1 (it was written channels-last)."""
    if x.dim() != 5 or not x.is_contiguous(memory_format=torch.channels_last_3d):
        return False
    return not x.is_contiguous() or (x.stride(1) == 1 and math.prod(x.shape[2:]) > 1)


def _conv3d_as_conv2d(x: Tensor, weight: Tensor, bias: Tensor | None, kwargs: dict[str, Any]) -> Tensor | None:
    """A channels-last-3d ``conv3d`` with a ``(k, 1, 1)`` kernel, unit stride and no padding on the last two axes,
    as the ``conv2d`` over ``(D, H·W)`` it equals: ``(N, C, D, H, W)`` viewed ``(N, C, D, H·W)`` (channels-last),
    convolved, viewed back. ``None`` where it does not apply (string padding, a stride or padding along H or W)."""
    stride, padding, dilation = (kwargs.get(k, d) for k, d in (("stride", 1), ("padding", 0), ("dilation", 1)))
    if isinstance(padding, str):
        return None
    stride, padding, dilation = (
        ntuple(v, 3, name, "conv_nd") for v, name in ((stride, "stride"), (padding, "padding"), (dilation, "dilation"))
    )
    if stride[1:] != (1, 1) or padding[1:] != (0, 0):
        return None
    batch, channels, depth, height, width = x.shape
    if channels > 1:
        flat = x.flatten(3)  # (N, C, D, H·W), a channels-last view
    else:  # a view would renumber the one channel's stride and lose the channels-last hint; keep the strides
        flat = x.as_strided((batch, 1, depth, height * width), (x.stride(0), x.stride(1), x.stride(2), x.stride(4)))
    out = F.conv2d(
        flat,
        weight.flatten(3),  # (C_out, C_in / groups, k, 1)
        bias,
        stride=(stride[0], 1),
        padding=(padding[0], 0),
        dilation=(dilation[0], 1),
        groups=kwargs.get("groups", 1),
    )  # (N, C_out, D', H·W), channels-last
    return out.unflatten(3, (height, width))  # (N, C_out, D', H, W), channels-last-3d


def run_conv(module: nn.Module, x: Tensor) -> Tensor:
    """``module(x)`` for a plain ``nn.Conv{1,2,3}d`` (zero padding) run through :func:`conv_nd`, so the upstream
    routes apply to ops that keep their convolutions as modules; any other module (a deploy form put in its
    place, a conv with another padding mode) is simply called."""
    if type(module) in (nn.Conv1d, nn.Conv2d, nn.Conv3d) and module.padding_mode == "zeros":
        return conv_nd(
            x,
            module.weight,
            module.bias,
            stride=module.stride,
            padding=module.padding,
            dilation=module.dilation,
            groups=module.groups,
        )
    return module(x)


def same_padding(kernel_size: Sequence[int], dilation: Sequence[int] | int = 1) -> tuple[int, ...]:
    """Symmetric padding that keeps ``ceil(S / stride)`` outputs for odd kernels, per dim."""
    dilation = ntuple(dilation, len(kernel_size), "dilation", "same_padding")
    return tuple(d * (k - 1) // 2 for k, d in zip(kernel_size, dilation, strict=True))
