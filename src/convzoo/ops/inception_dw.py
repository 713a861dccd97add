"""InceptionNeXt's Inception depthwise convolution: identity, square and band depthwise branches on channel groups."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from convzoo.core.conv import conv_nd, same_padding
from convzoo.core.init import conv_weight
from convzoo.core.validate import check_int, is_number
from convzoo.ops._layout import empty
from convzoo.ops.base import ConvSpec, Op
from convzoo.registry import OPS

__all__ = ["InceptionDW", "band_shapes"]


def band_shapes(band_kernel_size: int, dim: int) -> list[tuple[int, ...]]:
    """Kernel shapes of the band branches, in channel order: a ``k_b``-long band along the last axis first, then
    along each earlier axis (2-d: ``1×k_b`` then ``k_b×1``, as in the official code)."""
    shapes = []
    for axis in reversed(range(dim)):
        shape = [1] * dim
        shape[axis] = band_kernel_size
        shapes.append(tuple(shape))
    return shapes


@OPS.register("inception_dw", kind="grid", dims=(1, 2, 3), papers=("inceptionnext",), linear=True)
class InceptionDW(Op):
    """InceptionNeXt (S40), Inception depthwise convolution: identity, k_s×k_s, 1×k_b and k_b×1 DW branches.

    Input ``(N, C, *S)`` → output ``(N, C, *ceil(S / stride))``. With ``g = int(C · branch_ratio)`` the channels
    split, in this order, into ``C − (dim + 1)·g`` identity channels, ``g`` channels under a square ``k_s^d``
    depthwise conv (``kernel_size``), and ``g`` channels under each band depthwise conv (:func:`band_shapes`);
    the outputs keep the same order, written into one tensor in the input's memory format (no concatenation).
    Defaults ``kernel_size=3``, ``band_kernel_size=11``, ``branch_ratio=0.125`` and the channel order follow
    sail-sg/inceptionnext, ``models/inceptionnext.py`` (``InceptionDWConv2d``); each conv branch has a bias iff
    ``bias``, the identity none.

    N-d generalisation (the paper is 2-d): one band per axis, so ``dim + 1`` conv branches and
    ``branch_ratio ≤ 1/(dim + 1)`` (1/3 in 2-d; 1-d has a short and a long band, 3-d a cube and three bands).
    Stride s strides every conv branch and subsamples the identity channels (``x[..., ::s]``), which is the
    centre tap of a strided conv, so the op stays one linear map. ``dense_kernel()`` is that map as one
    depthwise conv of size ``max(k_s, k_b)`` per axis: each branch's kernel centred in it, identity = centre tap.
    At least one channel per conv branch is required (``int(C · branch_ratio) ≥ 1``, e.g. C ≥ 8 at 0.125); the
    identity group may be empty (``branch_ratio = 1/(dim + 1)`` with C divisible by ``dim + 1``).
    """

    same_channels = True

    def __init__(
        self,
        in_channels,
        out_channels,
        kernel_size=3,
        stride=1,
        *,
        dim=2,
        bias=True,
        band_kernel_size=11,
        branch_ratio=0.125,
    ):
        super().__init__(in_channels, out_channels, kernel_size, stride, dim=dim, bias=bias)
        name = type(self).registry_name
        if check_int(band_kernel_size, "band_kernel_size", name) % 2 == 0:
            raise ValueError(
                f"{name}: band_kernel_size must be odd for symmetric 'same' padding, got {band_kernel_size!r}"
            )
        num_conv = dim + 1
        if not is_number(branch_ratio):
            raise TypeError(f"{name}: branch_ratio must be a number, got {branch_ratio!r}")
        if not 0 < branch_ratio <= 1 / num_conv:
            raise ValueError(
                f"{name}: branch_ratio must be in (0, 1/{num_conv}] for dim={dim} ({num_conv} conv branches), "
                f"got {branch_ratio!r}"
            )
        branch_channels = int(in_channels * branch_ratio)
        if branch_channels < 1:
            raise ValueError(
                f"{name}: in_channels={in_channels} with branch_ratio={branch_ratio} gives "
                f"int({in_channels} * {branch_ratio}) = 0 channels per conv branch; expected at least 1 "
                f"(raise in_channels or branch_ratio)"
            )
        self.band_kernel_size = band_kernel_size
        self.branch_ratio = branch_ratio
        self.branch_channels = branch_channels
        self.identity_channels = in_channels - num_conv * branch_channels
        self.branch_kernels = [self.kernel_size, *band_shapes(band_kernel_size, dim)]  # square first, then bands
        self.branch_weights = nn.ParameterList()
        biases = []
        for shape in self.branch_kernels:
            weight, branch_bias = conv_weight(branch_channels, 1, shape, bias)
            self.branch_weights.append(weight)
            biases.append(branch_bias)
        # one (num_conv · g,) bias for the conv channels in order: the per-branch biases, concatenated
        self.bias = nn.Parameter(torch.cat([b.detach() for b in biases])) if bias else None

    def forward(self, x: Tensor) -> Tensor:
        self.check_input(x)
        # Each output channel is written once, into one tensor in x's memory format: the identity channels (the
        # input, subsampled by the stride) by one copy, then each conv branch's output over its channels. No split
        # and concatenate; starting from a clone of x instead would write the conv channels twice.
        kept = x[(..., *(slice(None, None, s) for s in self.stride))]  # (N, C, *ceil(S / stride)), a view
        out = empty(kept.shape, like=x)
        out[:, : self.identity_channels] = kept[:, : self.identity_channels]
        g = self.branch_channels
        for index, weight in enumerate(self.branch_weights):
            start = self.identity_channels + index * g
            branch_bias = None if self.bias is None else self.bias[index * g : (index + 1) * g]
            out[:, start : start + g] = self._depthwise(x[:, start : start + g], weight, branch_bias)  # (N, g, *S')
        return out  # (N, C, *ceil(S / stride))

    def _depthwise(self, x: Tensor, weight: Tensor, bias: Tensor | None) -> Tensor:
        """Depthwise conv of ``x`` ``(N, g, *S)`` with ``weight`` ``(g, 1, *k)``, "same" padding, the op's stride."""
        g = weight.shape[0]
        padding = same_padding(weight.shape[2:])
        if g == 1 and self.dim == 3:
            # PyTorch's CPU (oneDNN) groups=1 conv3d backward gives wrong weight gradients, and can corrupt the heap,
            # for one- or two-channel convs with a long depth kernel and stride 2 (torch 2.13, e.g. kernel (11, 1, 1)
            # on depth 7). Two identical groups take the depthwise path instead; channel 0 is the answer.
            x = x.expand(-1, 2, *x.shape[2:])  # (N, 2, *S)
            weight = weight.expand(2, *weight.shape[1:])  # (2, 1, *k)
            bias = None if bias is None else bias.expand(2)
            return conv_nd(x, weight, bias, stride=self.stride, padding=padding, groups=2)[:, :1]  # (N, 1, *S')
        return conv_nd(x, weight, bias, stride=self.stride, padding=padding, groups=g)

    def dense_kernel(self) -> ConvSpec:
        """One depthwise conv of size ``max(k_s, k_b)`` per axis holding every branch (identity = centre tap)."""
        size = tuple(max(k, self.band_kernel_size) for k in self.kernel_size)
        first = self.branch_weights[0]
        weight = first.new_zeros(self.in_channels, 1, *size)  # (C, 1, *size)
        centre = tuple(k // 2 for k in size)
        weight[(slice(0, self.identity_channels), 0, *centre)] = 1
        g = self.branch_channels
        with torch.no_grad():
            for index, branch in enumerate(self.branch_weights):
                start = self.identity_channels + index * g
                box = tuple(slice(c - k // 2, c + k // 2 + 1) for c, k in zip(centre, branch.shape[2:], strict=True))
                weight[(slice(start, start + g), slice(None), *box)] = branch.detach()
            bias = None
            if self.bias is not None:
                bias = torch.cat([self.bias.detach().new_zeros(self.identity_channels), self.bias.detach()])  # (C,)
        return ConvSpec(weight, bias, self.stride, same_padding(size), (1,) * self.dim, self.in_channels)

    def extra_repr(self) -> str:
        return super().extra_repr() + (
            f", band_kernel_size={self.band_kernel_size}, branch_ratio={self.branch_ratio}, "
            f"split=(identity {self.identity_channels}, {len(self.branch_kernels)} × {self.branch_channels}), "
            f"bias={self.bias is not None}"
        )
