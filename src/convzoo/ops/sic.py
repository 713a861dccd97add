"""Single intra-channel convolution with topological subdivisioning and the spatial "bottleneck" (S5, Wang et al.)."""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

from convzoo.core.conv import conv_nd, same_padding
from convzoo.core.init import conv_weight
from convzoo.core.validate import is_int
from convzoo.ops._layout import take_channels
from convzoo.ops.base import ConvSpec, Op
from convzoo.registry import OPS

__all__ = ["SingleIntraChannelConv", "topology_blocks"]

_CONV_TRANSPOSE = {1: F.conv_transpose1d, 2: F.conv_transpose2d, 3: F.conv_transpose3d}


def topology_blocks(grid: Sequence[int], block: Sequence[int]) -> Tensor:
    """Block index of every channel laid row-major on ``grid``, the grid cut into blocks of shape ``block``.

    Channel ``c`` sits at ``unravel(c, grid)``; its block is ``unravel(c, grid) // block``, numbered
    row-major over the ``grid / block`` blocks. Returns a long tensor ``(prod(grid),)``.
    """
    channel = torch.arange(math.prod(grid))
    block_id = torch.zeros_like(channel)
    for axis, (size, width) in enumerate(zip(grid, block, strict=True)):
        coordinate = channel // math.prod(grid[axis + 1 :]) % size
        block_id = block_id * (size // width) + coordinate // width
    return block_id


def _channel_grid(value, what: str, owner: str) -> tuple[int, ...]:
    if is_int(value):
        value = (value,)
    values = tuple(value) if isinstance(value, Sequence) else ()
    if not values or not all(is_int(v) and v >= 1 for v in values):
        raise ValueError(f"{owner}: {what} must be a tuple of positive ints, got {value!r}")
    return values


@OPS.register("sic", kind="grid", dims=(1, 2, 3), papers=("sic-conv",), linear=True)
class SingleIntraChannelConv(Op):
    """Single intra-channel conv (S5, Wang et al. 2016): depthwise k×k, then a topologically subdivided projection.

    Paper: "Design of Efficient Convolutional Layers using Single Intra-channel Convolution, Topological
    Subdivisioning and Spatial 'Bottleneck' Structure" (arXiv:1608.04337).

    ``(N, C_in, *S) → (N, C_out, *ceil(S / stride))``, N-d. The standard conv's spatial filtering and
    channel projection are unravelled and run one after the other (linear; the paper's ReLU after the
    projection belongs to the block, as it does for ``conv``):

    1. single intra-channel convolution: one k×k kernel per input channel (a depthwise conv, no bias,
       "same" padding, stride ``stride · bottleneck``);
    2. linear channel projection with topological subdivisioning: the input channels lie row-major on a
       grid ``topology`` (``prod = C_in``) cut into blocks of shape ``block``; the output channels lie on
       ``out_topology`` (default ``topology``) cut into the same number of blocks per axis, and output
       ``o`` reads only the ``P = prod(block)`` input channels of its own block,
       ``y[o] = Σ_p projection[o, p] · u[neighbours[o, p]]`` (``neighbours`` ascending). Blocks of a
       2-d or 3-d grid are interleaved channel sets, so this runs as a channel gather, a grouped 1×1
       conv with ``C_in / P`` groups and a gather back. ``topology=None`` connects every input (P = C_in).
    3. spatial "bottleneck" (``bottleneck = b > 1``): the projection runs at 1/b of the resolution and a
       single intra-channel deconvolution (depthwise transposed k×k conv, stride b) brings it back; its
       output padding gives exactly ``ceil(S / stride)`` positions (the first of ``L·b``, as a crop would,
       without a strided view). Linear but only b-periodically shift-invariant, so
       ``dense_kernel()`` exists only for ``b = 1``.

    The bias is added once, at the end. Counts (per sample, ``L = ceil(S / (stride·b))``):
    params ``C_in·Πk + C_out·P + [b > 1] C_out·Πk + [bias] C_out``;
    MACs ``(C_in·Πk + C_out·P + [b > 1] C_out·Πk) · ΠL`` (the deconvolution counted per input pixel, as
    ``torch.utils.flop_counter`` does).

    Departures: only the abstract (arXiv:1608.04337) could be read, so the details are its most literal
    reading: "arranging the spatial convolution sequentially" is one k×k intra-channel conv *before* the
    projection (not a chain of 1-d convs); "subdivisioning" is a partition of the channel grid into
    disjoint blocks (a reading where each output sees an overlapping window centred on it would have the
    same counts but different connectivity); the deconvolution reuses the kernel size k. The paper's
    defaults (grid shapes per layer, b = 2) are not known; here the defaults switch both schemes off.
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
        topology=None,
        block=None,
        out_topology=None,
        bottleneck=1,
    ):
        super().__init__(in_channels, out_channels, kernel_size, stride, dim=dim, bias=bias)
        name = type(self).registry_name
        if not is_int(bottleneck) or bottleneck < 1:
            raise ValueError(
                f"{name}: bottleneck must be a positive int (1 = off, 2 = halve the resolution), got {bottleneck!r}"
            )
        self.bottleneck = bottleneck
        self.topology, self.block, self.out_topology = self._check_topology(topology, block, out_topology)
        self.neighbourhood = math.prod(self.block)
        self.groups = in_channels // self.neighbourhood
        blocks_per_axis = [d // s for d, s in zip(self.topology, self.block, strict=True)]
        out_block = [e // b for e, b in zip(self.out_topology, blocks_per_axis, strict=True)]
        in_blocks = topology_blocks(self.topology, self.block)  # (C_in,)
        out_blocks = topology_blocks(self.out_topology, out_block)  # (C_out,)
        in_order = torch.argsort(in_blocks, stable=True)  # inputs grouped by block, ascending in each
        out_order = torch.argsort(out_blocks, stable=True)
        self.register_buffer("in_order", in_order, persistent=False)
        self.register_buffer("out_order", out_order, persistent=False)
        self.register_buffer("out_inverse", torch.argsort(out_order), persistent=False)
        neighbours = in_order.view(self.groups, self.neighbourhood)[out_blocks]  # (C_out, P)
        self.register_buffer("neighbours", neighbours, persistent=False)
        identity = torch.arange(max(in_channels, out_channels))
        self.interleaved = not (in_order.equal(identity[:in_channels]) and out_order.equal(identity[:out_channels]))
        self.depthwise, _ = conv_weight(in_channels, 1, self.kernel_size, bias=False)
        self.projection, self.bias = conv_weight(out_channels, self.neighbourhood, (1,) * dim, bias)
        self.deconv = conv_weight(out_channels, 1, self.kernel_size, bias=False)[0] if bottleneck > 1 else None

    def _check_topology(self, topology, block, out_topology):
        name = type(self).registry_name
        if topology is None:
            if block is not None or out_topology is not None:
                raise ValueError(
                    f"{name}: block and out_topology need a topology, got topology=None, block={block!r}, "
                    f"out_topology={out_topology!r}"
                )
            return (self.in_channels,), (self.in_channels,), (self.out_channels,)
        grid = _channel_grid(topology, "topology", name)
        if block is None:
            raise ValueError(f"{name}: a topology needs a block (the neighbourhood shape), got block=None")
        block = _channel_grid(block, "block", name)
        if math.prod(grid) != self.in_channels:
            raise ValueError(
                f"{name}: topology {grid} must hold in_channels = {self.in_channels} channels, holds {math.prod(grid)}"
            )
        if len(block) != len(grid) or any(d % s for d, s in zip(grid, block, strict=True)):
            raise ValueError(f"{name}: block {block} must have one size per axis of topology {grid}, each dividing it")
        if out_topology is None:
            if self.out_channels != self.in_channels:
                raise ValueError(
                    f"{name}: out_topology is needed when in_channels ({self.in_channels}) != out_channels "
                    f"({self.out_channels}), got out_topology=None"
                )
            return grid, block, grid
        out_grid = _channel_grid(out_topology, "out_topology", name)
        blocks_per_axis = tuple(d // s for d, s in zip(grid, block, strict=True))
        if (
            math.prod(out_grid) != self.out_channels
            or len(out_grid) != len(grid)
            or any(e % b for e, b in zip(out_grid, blocks_per_axis, strict=True))
        ):
            raise ValueError(
                f"{name}: out_topology {out_grid} must hold out_channels = {self.out_channels} channels with one size "
                f"per axis of topology {grid}, each divisible by the blocks per axis {blocks_per_axis}"
            )
        return grid, block, out_grid

    def project(self, u: Tensor, bias: Tensor | None) -> Tensor:
        """The subdivided linear channel projection of ``u`` (N, C_in, *L) → (N, C_out, *L), plus ``bias``."""
        if not self.interleaved:
            return conv_nd(u, self.projection, bias, groups=self.groups)
        u = take_channels(u, self.in_order)  # (N, C_in, *L), the channels of each block together
        weight = self.projection.index_select(0, self.out_order)  # (C_out, P, 1, ..., 1), block-sorted outputs
        bias = None if bias is None else bias.index_select(0, self.out_order)
        y = conv_nd(u, weight, bias, groups=self.groups)  # (N, C_out, *L), block-sorted outputs
        return take_channels(y, self.out_inverse)  # (N, C_out, *L)

    def forward(self, x: Tensor) -> Tensor:
        self.check_input(x)
        padding = same_padding(self.kernel_size)
        inner_stride = tuple(s * self.bottleneck for s in self.stride)
        u = conv_nd(x, self.depthwise, None, stride=inner_stride, padding=padding, groups=self.in_channels)
        if self.deconv is None:
            return self.project(u, self.bias)
        y = self.project(u, None)  # (N, C_out, *L)
        b = self.bottleneck
        # the transposed conv gives (L − 1)·b + 1 + output_padding positions: pad exactly to ceil(S / stride)
        # (≤ L·b), the first positions of the L·b it would give, so no crop (a strided view) follows
        extra = tuple(o - (n - 1) * b - 1 for o, n in zip(self.output_size(x.shape[2:]), y.shape[2:], strict=True))
        return _CONV_TRANSPOSE[self.dim](
            y, self.deconv, self.bias, stride=b, padding=padding, output_padding=extra, groups=self.out_channels
        )  # (N, C_out, *ceil(S / stride))

    def macs(self, input_size: Sequence[int]) -> int:
        """Multiply-accumulates per sample for spatial input size ``input_size`` (the class docstring's formula)."""
        low_res = math.prod(-(-s // (st * self.bottleneck)) for s, st in zip(input_size, self.stride, strict=True))
        taps = math.prod(self.kernel_size)
        per_pixel = self.in_channels * taps + self.out_channels * self.neighbourhood
        if self.deconv is not None:
            per_pixel += self.out_channels * taps
        return per_pixel * low_res

    @property
    def param_count(self) -> int:
        """``C_in·Πk + C_out·P + [b > 1] C_out·Πk + [bias] C_out`` (the class docstring's formula)."""
        taps = math.prod(self.kernel_size)
        count = self.in_channels * taps + self.out_channels * self.neighbourhood
        if self.deconv is not None:
            count += self.out_channels * taps
        return count + (self.out_channels if self.bias is not None else 0)

    def dense_kernel(self) -> ConvSpec:
        name = type(self).registry_name
        if self.deconv is not None:
            raise NotImplementedError(
                f"{name} with bottleneck={self.bottleneck} is linear but not shift-invariant (conv with stride, "
                f"projection, deconvolution): it has no dense kernel; only bottleneck=1 has one"
            )
        projection = self.projection.detach().flatten(1)  # (C_out, P)
        dense = projection.new_zeros(self.out_channels, self.in_channels).scatter_(1, self.neighbours, projection)
        weight = dense[:, :, None] * self.depthwise.detach().flatten(1)[None]  # (C_out, C_in, Πk)
        weight = weight.view(self.out_channels, self.in_channels, *self.kernel_size)  # (C_out, C_in, *k)
        bias = None if self.bias is None else self.bias.detach().clone()
        return ConvSpec(weight, bias, self.stride, same_padding(self.kernel_size), (1,) * self.dim)

    def extra_repr(self) -> str:
        extra = ""
        if self.groups > 1:
            extra += f", topology={self.topology}, block={self.block}, out_topology={self.out_topology}"
        if self.bottleneck > 1:
            extra += f", bottleneck={self.bottleneck}"
        return super().extra_repr() + extra + f", bias={self.bias is not None}"
