"""Shift-wise convolution: small-kernel depthwise convs whose outputs are shifted and summed into a large kernel."""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from convzoo.core.conv import conv_nd, same_padding
from convzoo.core.init import conv_weight
from convzoo.core.validate import check_int, check_number, check_odd
from convzoo.kernels.large_kernel import large_kernel_module
from convzoo.ops._layout import subsample, take_channels
from convzoo.ops.base import ConvSpec, Op
from convzoo.registry import OPS

__all__ = ["ShiftWise", "tile_offsets"]

_BATCH_NORM = {1: nn.BatchNorm1d, 2: nn.BatchNorm2d, 3: nn.BatchNorm3d}
_SEED = 123  # the official code fixes its random channel split and piece shuffles with seed 123


def tile_offsets(big: int, small: int) -> list[int]:
    """Centre offset of each of the ``ceil(big / small)`` small tiles along a strip: ``i·small + small//2 − big//2``.

    The official ``shift()`` stores the same positions as pads ``big//2 − i·small − (small − 1)`` of a small conv
    with padding ``small − 1``; tile 0 starts at ``−big//2``, so when ``small`` does not divide ``big`` the strip
    runs ``nk·small − big`` taps past the big kernel on the far side.
    """
    return [i * small + small // 2 - big // 2 for i in range(math.ceil(big / small))]


@OPS.register("shiftwise", kind="grid", dims=(1, 2, 3), papers=("shiftwise",), linear=True)
class ShiftWise(Op):
    """ShiftwiseConv (S41): small-kernel convs, shifted and summed, emulate a large depthwise kernel.

    Input ``(N, C, *S)`` → output ``(N, C, *ceil(S / stride))``. Following lidc54/shift-wiseConv
    (``ShifthWiseConv2dImplicit`` with ``AddShift_mp_module``): ``R = int(C·(1 − ghost_ratio)) // 2 · 2`` channels
    ("rep", chosen by a fixed seed) each get ``nk = ceil(K / k)`` small ``k^d`` depthwise kernels (the sum of
    ``n_path`` parallel copies, merged at deploy); the other ("ghost") channels pass through. For every rep
    channel and each of ``n_rep`` groups, a fixed random permutation places the nk piece outputs at the nk tile
    positions :func:`tile_offsets` along each axis (2-d: a horizontal and a vertical strip), and one random piece
    also goes to the centre ("small" path). Per rep channel::

        y = x + Σ_axes BN_a(Σ_g Σ_j shift_a(piece_j ⋆ x, offset(σ_{a,g}(j)))) + BN_s(Σ_g piece_{ι_g} ⋆ x)

    A shifted small conv is the small kernel placed off-centre in a large one, so the op is one depthwise conv
    with a ``(2·(nk·k − 1 − K//2) + 1)^d`` kernel: ``dense_kernel()`` (eval mode, BNs folded; = ``K^d`` when
    k divides K), and ``merge()`` runs it through :mod:`convzoo.kernels.large_kernel`. Defaults (``kernel_size=13``,
    ``small_kernel_size=3``, ``ghost_ratio=0.23``, ``n_path=2``, ``n_rep=4``, BN on the three paths) follow
    ``SW_v2_unirep.py``. N-d: one strip per axis. Departures: stride s subsamples the stride-1 result (the
    official op is stride 1); the random choices use torch's generator, not NumPy's, so they differ from the
    official tables; with BN, ``bias=False`` means the BNs have no shift β (``use_bn=False``: one bias iff ``bias``).
    """

    same_channels = True

    def __init__(
        self,
        in_channels,
        out_channels,
        kernel_size=13,
        stride=1,
        *,
        dim=2,
        bias=True,
        small_kernel_size=3,
        ghost_ratio=0.23,
        n_path=2,
        n_rep=4,
        use_bn=True,
    ):
        super().__init__(in_channels, out_channels, kernel_size, stride, dim=dim, bias=bias)
        name = type(self).registry_name
        if len(set(self.kernel_size)) != 1:
            raise ValueError(f"{name}: kernel_size must be the same on every axis, got {kernel_size!r}")
        big = self.kernel_size[0]
        small = small_kernel_size
        if check_odd(small, "small_kernel_size", name) > big:
            raise ValueError(f"{name}: small_kernel_size must be an odd int in [1, kernel_size={big}], got {small!r}")
        check_int(n_path, "n_path", name)
        check_int(n_rep, "n_rep", name)
        check_number(ghost_ratio, "ghost_ratio", name, low=0, high=1, low_open=False, high_open=True)
        if not isinstance(use_bn, bool):
            raise TypeError(f"{name}: use_bn must be a bool, got {use_bn!r}")
        rep = int(in_channels * (1 - ghost_ratio)) // 2 * 2
        if rep < 2:
            raise ValueError(
                f"{name}: in_channels={in_channels} with ghost_ratio={ghost_ratio} leaves {rep} shift-wise channels; "
                f"expected at least 2 (raise in_channels or lower ghost_ratio)"
            )
        self.small_kernel_size, self.ghost_ratio, self.n_path, self.n_rep, self.use_bn = (
            small,
            ghost_ratio,
            n_path,
            n_rep,
            use_bn,
        )
        self.offsets = tile_offsets(big, small)
        pieces = len(self.offsets)
        generator = torch.Generator().manual_seed(_SEED)
        rep_index = torch.randperm(in_channels, generator=generator)[:rep].sort().values
        self.register_buffer("rep_index", rep_index, persistent=False)  # (R,)
        # piece_at[a, g, i, c]: which of channel c's pieces sits at tile i of axis a's strip in group g
        piece_at = torch.stack(
            [
                torch.stack([torch.randperm(pieces, generator=generator) for _ in range(rep)], 1)
                for _ in range(dim * n_rep)
            ]
        )  # (dim·n_rep, nk, R)
        self.register_buffer("piece_at", piece_at.view(dim, n_rep, pieces, rep), persistent=False)
        self.register_buffer("centre_piece", torch.randint(pieces, (n_rep, rep), generator=generator), persistent=False)
        self.path_weights = nn.ParameterList(
            conv_weight(rep * pieces, 1, (small,) * dim, bias=False)[0] for _ in range(n_path)
        )  # each (R·nk, 1, *k)
        if use_bn:
            self.bns = nn.ModuleList(self._batch_norm(rep) for _ in range(dim + 1))  # one per strip, then the centre
            self.bias = None
        else:
            self.bns = None
            self.bias = nn.Parameter(torch.zeros(rep)) if bias else None

    def _batch_norm(self, channels: int) -> nn.Module:
        bn = _BATCH_NORM[self.dim](channels)
        if not self.has_bias:
            del bn.bias  # scale γ only: β becomes a constant zero buffer
            bn.register_buffer("bias", torch.zeros(channels), persistent=False)
        return bn

    @property
    def rep_channels(self) -> int:
        return self.rep_index.numel()

    def piece_weight(self) -> Tensor:
        """The small kernels, ``n_path`` copies summed: ``(R, nk, *k)``."""
        weight = sum(self.path_weights[1:], self.path_weights[0])  # (R·nk, 1, *k)
        return weight.view(self.rep_channels, len(self.offsets), *weight.shape[2:])  # (R, nk, *k)

    def forward(self, x: Tensor) -> Tensor:
        self.check_input(x)
        size, small, pieces = x.shape[2:], self.small_kernel_size, len(self.offsets)
        # every step keeps x's memory format: channel selections go through take_channels (index_select and gather
        # write contiguous tensors), the scatter back writes into a copy of x
        rep_x = take_channels(x, self.rep_index)  # (N, R, *S)
        weight = self.piece_weight().flatten(0, 1).unsqueeze(1)  # (R·nk, 1, *k)
        halo = small - 1  # the official small conv's padding: every piece is computed e = k//2 beyond the map
        piece_out = conv_nd(rep_x, weight, padding=halo, groups=self.rep_channels)  # (N, R·nk, *(S + 2e))
        first_piece = torch.arange(self.rep_channels, device=x.device) * pieces  # (R,) channel of piece 0 of each
        edge = small // 2
        reach = max(abs(o) for o in self.offsets)
        paths = []
        for axis in range(self.dim):
            # zero-pad the strip axis so every tile offset is a plain window (pieces vanish that far out anyway)
            padded = nn.functional.pad(piece_out, [0, 0] * (self.dim - 1 - axis) + [reach, reach])
            strip = 0
            for group in range(self.n_rep):
                for tile, offset in enumerate(self.offsets):
                    chosen = take_channels(padded, first_piece + self.piece_at[axis, group, tile])  # (N, R, *S_pad)
                    window = [slice(edge, edge + n) for n in size]
                    window[axis] = slice(reach + edge + offset, reach + edge + offset + size[axis])
                    strip = strip + chosen[(slice(None), slice(None), *window)]  # (N, R, *S)
            paths.append(strip)
        centre = 0
        for group in range(self.n_rep):
            chosen = take_channels(piece_out, first_piece + self.centre_piece[group])  # (N, R, *(S + 2e))
            centre = centre + chosen[(slice(None), slice(None), *(slice(edge, edge + n) for n in size))]
        paths.append(centre)
        out = rep_x
        for index, path in enumerate(paths):
            out = out + (self.bns[index](path) if self.bns is not None else path)
        if self.bias is not None:
            out = out + self.bias.view(-1, *([1] * self.dim))
        # (N, C, *S): the rep channels written into a copy of x, the ghost channels untouched
        out = x.clone(memory_format=torch.preserve_format).index_copy_(1, self.rep_index, out)
        return subsample(out, self.stride)  # (N, C, *ceil(S / stride)), one copy in x's memory format

    def dense_kernel(self) -> ConvSpec:
        """The one depthwise conv this op equals (eval mode): identity, strips and centre, BNs folded."""
        small, half = self.small_kernel_size, len(self.offsets) * self.small_kernel_size - 1 - self.kernel_size[0] // 2
        size = 2 * half + 1
        with torch.no_grad():
            pieces = self.piece_weight().detach()  # (R, nk, *k)
            scales, shift = [torch.ones(self.rep_channels, dtype=pieces.dtype)] * (self.dim + 1), 0
            if self.bns is not None:
                scales, shifts = [], []
                for bn in self.bns:
                    scale = torch.rsqrt(bn.running_var + bn.eps) * bn.weight
                    scales.append(scale)
                    shifts.append(bn.bias - bn.running_mean * scale)
                shift = sum(shifts)
            elif self.bias is not None:
                shift = self.bias.detach()
            rep_kernel = pieces.new_zeros(self.rep_channels, *([size] * self.dim))  # (R, *D)
            channels = torch.arange(self.rep_channels)
            for axis in range(self.dim + 1):
                for group in range(self.n_rep):
                    tiles = list(enumerate(self.offsets)) if axis < self.dim else [(None, 0)]
                    for tile, offset in tiles:
                        chosen = self.piece_at[axis, group, tile] if tile is not None else self.centre_piece[group]
                        box = [slice(half - small // 2, half + small // 2 + 1)] * self.dim
                        if tile is not None:
                            box[axis] = slice(half + offset - small // 2, half + offset + small // 2 + 1)
                        placed = pieces[channels, chosen] * scales[axis].view(-1, *([1] * self.dim))  # (R, *k)
                        rep_kernel[(slice(None), *box)] += placed
            rep_kernel[(slice(None), *([half] * self.dim))] += 1  # the identity of the rep channels
            weight = pieces.new_zeros(self.in_channels, 1, *([size] * self.dim))  # (C, 1, *D)
            weight[(slice(None), 0, *([half] * self.dim))] = 1  # ghost channels: identity
            weight[self.rep_index, 0] = rep_kernel
            bias = None
            if self.bns is not None or self.bias is not None:
                bias = pieces.new_zeros(self.in_channels)
                bias[self.rep_index] = shift
        return ConvSpec(weight, bias, self.stride, same_padding((size,) * self.dim), (1,) * self.dim, self.in_channels)

    def merge(self) -> nn.Module:
        """The deploy form: the dense depthwise kernel run by the large-kernel path (FFT or strips where faster)."""
        spec = self.dense_kernel()
        return large_kernel_module(spec.to_module())

    def extra_repr(self) -> str:
        return super().extra_repr() + (
            f", small_kernel_size={self.small_kernel_size}, pieces={len(self.offsets)}, rep={self.rep_channels}/"
            f"{self.in_channels}, n_path={self.n_path}, n_rep={self.n_rep}, use_bn={self.use_bn}"
        )
