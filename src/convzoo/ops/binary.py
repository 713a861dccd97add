"""Binary convolutions (S8, XNOR-Net): binary weights (BWN) and binary weights and inputs (XNOR).

Conventions shared with the packed inference form (:mod:`convzoo.kernels.binary_packed`):

- ``sign`` maps every real value ``x >= 0`` to +1 and ``x < 0`` to -1, so a real zero in the input
  or in a weight binarises to +1;
- "same" padding is applied *after* binarisation: a padded position is 0, neither +1 nor -1, and
  contributes nothing to the binary dot product (the packed kernel excludes it with a validity mask);
- the K map of XNOR mode averages ``A = mean_c |x|`` over each k×k window with the same zero padding,
  dividing by the full window size ``k^d`` (padded positions count as zeros).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor, nn

from convzoo.core.conv import conv_nd, same_padding
from convzoo.ops.base import ConvSpec, Op
from convzoo.registry import OPS

__all__ = ["BinaryConv", "binary_conv", "binary_sign", "scaling_map", "window_mean", "weight_scale", "MODES"]

MODES = ("bwn", "xnor")


class _SignSTE(torch.autograd.Function):
    """sign with +1 at 0 forward; straight-through backward: the gradient passes where |x| <= 1 (S8 §3.2)."""

    @staticmethod
    def forward(ctx, x: Tensor) -> Tensor:
        ctx.save_for_backward(x)
        return torch.where(x >= 0, 1.0, -1.0).to(x.dtype)

    @staticmethod
    def backward(ctx, grad: Tensor) -> Tensor:
        (x,) = ctx.saved_tensors
        return grad * (x.abs() <= 1).to(grad.dtype)


def binary_sign(x: Tensor) -> Tensor:
    """+1 where ``x >= 0``, -1 elsewhere; gradient ``1_{|x| <= 1}`` (straight-through estimator)."""
    return _SignSTE.apply(x)


def weight_scale(weight: Tensor) -> Tensor:
    """α per output channel: mean |W| over ``(C_in, *k)``, shaped ``(C_out, 1, *1)`` (S8 eq. 6)."""
    return weight.abs().mean(dim=tuple(range(1, weight.dim())), keepdim=True)


def window_mean(mean_abs: Tensor, kernel_size: Sequence[int], stride: Sequence[int]) -> Tensor:
    """``A (N, 1, *S)`` convolved with the k×k averaging kernel, zero "same" padding: ``(N, 1, *out)``."""
    average = torch.full(
        (1, 1, *kernel_size), 1.0 / math.prod(kernel_size), dtype=mean_abs.dtype, device=mean_abs.device
    )
    return conv_nd(mean_abs, average, stride=tuple(stride), padding=same_padding(kernel_size))


def scaling_map(x: Tensor, kernel_size: Sequence[int], stride: Sequence[int]) -> Tensor:
    """K = (mean_c |x|) * k, k the k×k averaging kernel, zero "same" padding (S8 §3.2): ``(N, 1, *out)``."""
    return window_mean(x.abs().mean(dim=1, keepdim=True), kernel_size, stride)  # A: (N, 1, *S)


def binary_conv(x: Tensor, weight: Tensor, bias: Tensor | None, stride: Sequence[int], mode: str = "xnor") -> Tensor:
    """The binary convolution of S8: ``conv(x, α·sign(W))`` (bwn) or ``conv(sign(x), α·sign(W)) ⊙ K`` (xnor)."""
    kernel_size = tuple(weight.shape[2:])
    padding = same_padding(kernel_size)
    # α is applied after the conv: a ±1 × ±1 conv sums exact integers, so a zero dot product is exactly 0 here
    # as in the packed kernel, and the next layer's sign agrees with it
    alpha = weight_scale(weight).view(1, -1, *([1] * len(kernel_size)))  # (1, C_out, *1)
    inputs = x if mode == "bwn" else binary_sign(x)
    out = conv_nd(inputs, binary_sign(weight), None, stride=tuple(stride), padding=padding) * alpha
    if mode == "xnor":
        out = out * scaling_map(x, kernel_size, stride)
    return out if bias is None else out + bias.view(1, -1, *([1] * len(kernel_size)))  # (1, C_out, *1)


@OPS.register("binary", kind="grid", dims=(1, 2, 3), papers=("xnor-net",), linear=False)
class BinaryConv(Op):
    """S8 XNOR-Net: binary-weight (bwn) or XNOR (binary weights and inputs, K scaling map) convolution.

    Weights ``W (C_out, C_in, *k)`` are kept in float for training and binarised in every forward pass
    as ``α · sign(W)`` with α = mean |W| per output channel (S8 eq. 6). In ``xnor`` mode the input is
    binarised too and the output scaled by the map K = A * k (A = mean over channels of |x|, k a k×k
    averaging kernel), as S8 §3.2 and Fig. 2 describe. Gradients: straight-through sign (1 where |x| <= 1)
    for inputs and weights; α and K are differentiated as ordinary functions of W and x, so the weight
    gradient is ``α 1_{|W| <= 1} g + sign(W) Σ(sign(W) g) / n`` per output channel, the two terms of the
    widely used XNOR-Net-PyTorch update (which further multiplies by ``n (1 - 1/C_in)``, a learning-rate
    rescale we leave to the optimiser). Paper default:
    ``mode="xnor"``, no bias (S8 Fig. 3 follows each binary conv with pooling and BN).
    Zero conventions: see the module docstring (real zeros → +1; padding contributes 0).
    In ``bwn`` mode the op is linear in x and ``dense_kernel()`` returns ``α · sign(W)``.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int | Sequence[int] = 3,
        stride: int | Sequence[int] = 1,
        *,
        dim: int = 2,
        bias: bool = True,
        mode: str = "xnor",
    ) -> None:
        super().__init__(in_channels, out_channels, kernel_size, stride, dim=dim, bias=bias)
        if mode not in MODES:
            raise ValueError(f"binary: mode must be one of {', '.join(MODES)}, got {mode!r}")
        self.mode = mode
        self.weight = nn.Parameter(torch.empty(out_channels, in_channels, *self.kernel_size))
        self.bias = nn.Parameter(torch.zeros(out_channels)) if bias else None
        nn.init.kaiming_normal_(self.weight, mode="fan_out", nonlinearity="relu")

    def forward(self, x: Tensor) -> Tensor:
        self.check_input(x)
        return binary_conv(x, self.weight, self.bias, self.stride, self.mode)

    def dense_kernel(self) -> ConvSpec:
        if self.mode != "bwn":
            raise NotImplementedError("binary: only mode='bwn' is linear in the input; 'xnor' has no dense kernel")
        with torch.no_grad():
            weight = binary_sign(self.weight) * weight_scale(self.weight)
        bias = None if self.bias is None else self.bias.detach().clone()
        return ConvSpec(weight, bias, self.stride, same_padding(self.kernel_size), (1,) * self.dim)

    def extra_repr(self) -> str:
        return super().extra_repr() + f", mode={self.mode}, bias={self.bias is not None}"
