"""A learnable morphological layer built on the semiring convolution (S47): dilation, erosion, then a linear mix.

Each input channel is dilated (``(max, +)``) and eroded (``(min, +)``) with its own learned, non-flat
structuring element, and a 1×1 ``(+, ×)`` convolution mixes the ``2·C_in`` maps into ``C_out`` channels:
the dilation–erosion layer followed by a linear combination of Mondal et al.'s Dense Morphological Network
(2019), written with convzoo's N-d semiring convolution instead of their dense (fully connected) form.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor, nn

from convzoo.core.conv import same_padding
from convzoo.core.init import conv_weight
from convzoo.ops.base import Op
from convzoo.ops.semiring import semiring_conv
from convzoo.registry import OPS

__all__ = ["MorphologicalConv"]


@OPS.register("morph", kind="grid", dims=(1, 2, 3), papers=("semiring-conv",))
class MorphologicalConv(Op):
    """Learnable morphology (S47): per-channel (max,+) dilation and (min,+) erosion, then a 1×1 mix to C_out.

    Structuring elements start near flat (uniform noise in ±0.1 around 0), so the layer starts as a max and a
    min filter over each window. Stride is applied by the morphological step.
    """

    def __init__(self, in_channels, out_channels, kernel_size=3, stride=1, *, dim=2, bias=True):
        super().__init__(in_channels, out_channels, kernel_size, stride, dim=dim, bias=bias)
        # (C_in, 1, *k) each: one element per channel, for dilation and for erosion
        self.dilation_element = nn.Parameter(torch.empty(in_channels, 1, *self.kernel_size).uniform_(-0.1, 0.1))
        self.erosion_element = nn.Parameter(torch.empty(in_channels, 1, *self.kernel_size).uniform_(-0.1, 0.1))
        self.mix, self.bias = conv_weight(out_channels, 2 * in_channels, (1,) * dim, bias)

    def forward(self, x: Tensor) -> Tensor:
        self.check_input(x)
        padding = same_padding(self.kernel_size)
        common = {"stride": self.stride, "padding": padding, "groups": self.in_channels}
        dilated = semiring_conv(x, self.dilation_element, semiring="max_plus", **common)  # (N, C_in, *S_out)
        eroded = semiring_conv(x, self.erosion_element, semiring="min_plus", **common)  # (N, C_in, *S_out)
        both = torch.cat([dilated, eroded], dim=1)  # (N, 2·C_in, *S_out)
        return semiring_conv(both, self.mix, self.bias, semiring="plus_times")  # (N, C_out, *S_out)

    def macs(self, input_size: Sequence[int]) -> int:
        """Per sample: a (max, +) and a (min, +) pass per channel and window element, then the 1×1 mix."""
        positions = math.prod(self.output_size(input_size))
        return (2 * math.prod(self.kernel_size) + self.out_channels) * self.in_channels * positions

    def extra_repr(self) -> str:
        return super().extra_repr() + f", bias={self.bias is not None}"
