"""Spatial CNN: slice-by-slice message passing along the four directions of a feature map (N-d)."""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from convzoo.core.conv import conv_nd, same_padding
from convzoo.ops._layout import subsample
from convzoo.ops.base import Op
from convzoo.registry import OPS

__all__ = ["SpatialCNN", "scnn_pass"]


def scnn_pass(x: Tensor, weight: Tensor, bias: Tensor | None, axis: int, reverse: bool) -> Tensor:
    """One SCNN direction: slices of ``x`` ``(N, C, *S)`` along spatial ``axis``, visited in order (``reverse``:
    from the far end), each receiving ``relu(conv(previous updated slice))``::

        X'_1 = X_1,    X'_j = X_j + relu(W ⋆ X'_{j−1} + b)

    ``weight`` is ``(C, C, *k)`` over the ``dim − 1`` axes of a slice ("same" padding; in 1-d a ``(C, C)``
    matrix); the result has ``x``'s shape and memory format. Sequential by definition: slice j needs the updated
    slice j − 1.
    """
    slices = torch.unbind(x, dim=2 + axis)  # each (N, C, *S without axis), a view
    order = range(len(slices) - 1, -1, -1) if reverse else range(len(slices))
    padding = same_padding(weight.shape[2:])

    def message(previous: Tensor) -> Tensor:
        if weight.dim() == 2:
            return torch.relu(previous @ weight.t() + (0 if bias is None else bias))  # (N, C)
        return torch.relu(conv_nd(previous, weight, bias, padding=padding))  # (N, C, *slice)

    if len(slices) == 1:
        # one slice: nothing to pass; the zero-weighted message keeps the kernel in the graph (zero gradient)
        return x + 0 * message(slices[0]).unsqueeze(2 + axis)
    # each updated slice is written into a tensor laid out like x (torch.stack would write a contiguous one); the
    # next message reads the updated slice itself, not its copy in out, so the writes do not disturb autograd
    out = torch.empty_like(x)  # (N, C, *S)
    previous = None
    for index in order:
        updated = slices[index] if previous is None else slices[index] + message(previous)
        out.select(2 + axis, index).copy_(updated)
        previous = updated
    return out


@OPS.register("scnn", kind="grid", dims=(1, 2, 3), papers=("scnn",), linear=False)
class SpatialCNN(Op):
    """Spatial CNN (S39), "Spatial As Deep": sequential slice-by-slice convolutions down, up, right and left.

    Input ``(N, C, *S)`` → output ``(N, C, *ceil(S / stride))``. Four passes in the paper's order (SCNN_D,
    SCNN_U, SCNN_R, SCNN_L), each :func:`scnn_pass` with its own ``C × C × w`` kernel: down = rows top to bottom
    (axis H), up = bottom to top, right = columns left to right (axis W), left = right to left; every pass reads the
    previous pass's output. Kernel width ``w = kernel_size`` (the paper: 9; the class default). N-d: two passes per
    axis in axis order (forward, then backward), each slice a ``(dim − 1)``-d map convolved with a
    ``C × C × w^(dim−1)`` kernel (1-d: a ``C × C`` matrix, so ``kernel_size`` must be 1).

    Departures: the paper's message has no bias; ``bias=True`` (the contract default) adds one per pass
    (``bias=False`` is the paper). Stride s subsamples the output (``y[..., ::s]``): the paper has no stride.
    Initialisation: N(0, (2 / (C·w^(dim−1)))·1/ (2·dim)) so the summed messages stay O(1) (the paper does not say).
    """

    same_channels = True
    contract_kernel_size = 1  # the one width valid in every dim (1-d slices are points)

    def __init__(self, in_channels, out_channels, kernel_size=9, stride=1, *, dim=2, bias=True):
        super().__init__(in_channels, out_channels, kernel_size, stride, dim=dim, bias=bias)
        name = type(self).registry_name
        if len(set(self.kernel_size)) != 1:
            raise ValueError(f"{name}: kernel_size must be the same on every axis, got {kernel_size!r}")
        width = self.kernel_size[0]
        if dim == 1 and width != 1:
            raise ValueError(f"{name}: a 1-d slice is one point, so kernel_size must be 1 for dim=1, got {width}")
        channels = in_channels
        slice_kernel = (width,) * (dim - 1)
        std = math.sqrt(2.0 / (channels * math.prod(slice_kernel)) / (2 * dim))
        self.weights = nn.ParameterList(
            nn.Parameter(torch.randn(channels, channels, *slice_kernel) * std) for _ in range(2 * dim)
        )
        self.biases = nn.ParameterList(nn.Parameter(torch.zeros(channels)) for _ in range(2 * dim)) if bias else None

    def directions(self) -> list[tuple[int, bool]]:
        """``(axis, reverse)`` of each pass, in order: (0, False) = down, (0, True) = up, (1, False) = right, ..."""
        return [(axis, reverse) for axis in range(self.dim) for reverse in (False, True)]

    def forward(self, x: Tensor) -> Tensor:
        self.check_input(x)
        for index, (axis, reverse) in enumerate(self.directions()):
            bias = None if self.biases is None else self.biases[index]
            x = scnn_pass(x, self.weights[index], bias, axis, reverse)
        return subsample(x, self.stride)  # (N, C, *ceil(S / stride)), one copy in x's memory format

    def extra_repr(self) -> str:
        return super().extra_repr() + f", passes={2 * self.dim}, bias={self.biases is not None}"
