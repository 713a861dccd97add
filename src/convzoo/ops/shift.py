"""Parameter-free spatial shift followed by a pointwise conv (S2 SCNet, S7 TCSR): zero-MAC spatial mixing."""

from __future__ import annotations

import itertools

import torch
import torch.nn.functional as F
from torch import Tensor

from convzoo.core.conv import conv_nd, same_padding
from convzoo.core.init import conv_weight
from convzoo.ops._layout import concat
from convzoo.ops.base import ConvSpec, Op
from convzoo.registry import OPS

__all__ = ["SpatialShiftConv", "shift_offsets", "spatial_shift"]


def shift_offsets(dim: int, directions: str = "axial") -> list[tuple[int, ...]]:
    """Unit shift directions: ``"axial"`` gives ±1 along each axis (2·dim), ``"all"`` every neighbour (3^dim − 1).

    In 2-D, axial is (+1, 0), (−1, 0), (0, +1), (0, −1); "all" adds the diagonals (SCNet's 8 directions).
    """
    if directions == "axial":
        return [tuple(sign if i == axis else 0 for i in range(dim)) for axis in range(dim) for sign in (1, -1)]
    if directions == "all":
        return [o for o in itertools.product((0, 1, -1), repeat=dim) if any(o)]
    raise ValueError(f"shift: directions must be 'axial' or 'all', got {directions!r}")


def group_slices(channels: int, groups: int) -> list[slice]:
    """``groups`` equal consecutive channel slices; the remainder ``channels % groups`` is left out (unshifted)."""
    size = channels // groups
    return [slice(g * size, (g + 1) * size) for g in range(groups)]


def spatial_shift(
    x: Tensor, offsets: list[tuple[int, ...]], distance: tuple[int, ...], stride: tuple[int, ...]
) -> Tensor:
    """Shift channel group ``g`` of ``x`` (N, C, *S) by ``offsets[g] · distance``; vacated pixels become zero.

    ``out[:, c, t] = x[:, c, t − o·distance]`` (zero outside), sampled every ``stride`` pixels:
    ``(N, C, *S) → (N, C, *ceil(S / stride))``, in ``x``'s memory format. Channels past the last full group
    stay in place. Pure data movement (one copy per group into a zeroed output; with a stride, one pad and one gather
    of slices): no multiply is executed.
    """
    n, c, *size = x.shape
    slices = group_slices(c, len(offsets))
    if all(st == 1 for st in stride):
        return _shift_in_place(x, offsets, distance, slices)
    pad = [p for d in reversed(distance) for p in (d, d)]
    padded = F.pad(x, pad)  # (N, C, *(S + 2·distance))
    pieces = []
    for group, offset in zip(slices, offsets, strict=True):
        window = tuple(
            slice(d - o * d, d - o * d + s, st) for o, d, s, st in zip(offset, distance, size, stride, strict=True)
        )
        pieces.append(padded[(slice(None), group, *window)])
    rest = slice(slices[-1].stop, c)
    centre = tuple(slice(d, d + s, st) for d, s, st in zip(distance, size, stride, strict=True))
    pieces.append(padded[(slice(None), rest, *centre)])
    return concat(pieces, 1, x)  # (N, C, *ceil(S / stride))


def _shift_in_place(
    x: Tensor, offsets: list[tuple[int, ...]], distance: tuple[int, ...], slices: list[slice]
) -> Tensor:
    """The unstrided shift as one copy per group into a zeroed output of ``x``'s memory format (no padded copy
    and no concatenation: about 1.6× faster than pad + slice + cat on an NCHW 64×256² map at one thread)."""
    out = torch.zeros_like(x)  # (N, C, *S), x's memory format
    size = x.shape[2:]
    for group, offset in zip(slices, offsets, strict=True):
        moves = [o * d for o, d in zip(offset, distance, strict=True)]  # out[t] = x[t − move]
        if any(abs(m) >= s for m, s in zip(moves, size, strict=True)):
            continue  # moved wholly out of the map: the group stays zero
        target = (slice(None), group, *(slice(max(m, 0), s + min(m, 0)) for m, s in zip(moves, size, strict=True)))
        source = (slice(None), group, *(slice(max(-m, 0), s + min(-m, 0)) for m, s in zip(moves, size, strict=True)))
        out[target] = x[source]
    rest = slice(slices[-1].stop, x.shape[1])
    out[:, rest] = x[:, rest]
    return out


@OPS.register("shift", kind="grid", dims=(1, 2, 3), papers=("scnet-sr", "tcsr"), linear=True)
class SpatialShiftConv(Op):
    """Spatial shift + 1×1 conv (S2 SCNet, S7 TCSR): channel groups shifted by (k−1)/2 pixels, then mixed pointwise.

    The input channels are split into one equal group per direction (``"axial"``: ±1 along each
    axis, 4 groups in 2-D as in TCSR's EFFN; ``"all"``: every neighbour, 8 groups in 2-D as in
    SCNet's Shift8); the ``C_in mod groups`` channels left over stay in place. The shift moves data
    only (slicing and padding, zero MACs); the stride subsamples in the same slice, and the 1×1 conv
    mixes channels. ``kernel_size`` sets the reach: a shift of ``(k − 1) / 2`` pixels per axis.
    """

    def __init__(self, in_channels, out_channels, kernel_size=3, stride=1, *, dim=2, bias=True, directions="axial"):
        super().__init__(in_channels, out_channels, kernel_size, stride, dim=dim, bias=bias)
        self.offsets = shift_offsets(dim, directions)
        self.directions = directions
        if all(k == 1 for k in self.kernel_size):
            raise ValueError(f"shift: kernel_size must be at least 3 to shift anything, got {kernel_size!r}")
        if in_channels < len(self.offsets):
            raise ValueError(
                f"shift: needs at least one input channel per direction ({len(self.offsets)} {directions} "
                f"directions in {dim}-d), got in_channels={in_channels}"
            )
        self.distance = tuple((k - 1) // 2 for k in self.kernel_size)
        self.weight, self.bias = conv_weight(out_channels, in_channels, (1,) * dim, bias)

    def forward(self, x: Tensor) -> Tensor:
        self.check_input(x)
        shifted = spatial_shift(x, self.offsets, self.distance, self.stride)
        return conv_nd(shifted, self.weight, self.bias)

    def dense_kernel(self) -> ConvSpec:
        weight = self.weight.new_zeros(self.out_channels, self.in_channels, *self.kernel_size)
        pointwise = self.weight.detach().flatten(1)  # (C_out, C_in)
        centre = tuple(k // 2 for k in self.kernel_size)
        slices = group_slices(self.in_channels, len(self.offsets))
        taps = [(s, o) for s, o in zip(slices, self.offsets, strict=True)]
        taps.append((slice(slices[-1].stop, self.in_channels), (0,) * self.dim))
        for group, offset in taps:
            # out[t] = x[t − o·d]: in cross-correlation that is the tap at centre − o·d
            tap = tuple(c - o * d for c, o, d in zip(centre, offset, self.distance, strict=True))
            weight[(slice(None), group, *tap)] = pointwise[:, group]
        bias = None if self.bias is None else self.bias.detach().clone()
        return ConvSpec(weight, bias, self.stride, same_padding(self.kernel_size), (1,) * self.dim)

    def extra_repr(self) -> str:
        return super().extra_repr() + f", directions={self.directions!r}, groups={len(self.offsets)}"
