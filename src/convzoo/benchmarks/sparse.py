"""Suites ``sparse1x1`` (S107) and ``sparse3d`` (S43): sparse kernels against the dense convolutions they replace.

``sparse1x1``: at each MobileNet-v1 pointwise shape (224² input, batch 1; the five 512→512 layers at 14² are one
case), the CSR 1×1 convolution at 90 % sparsity (``deploy.sparsify``'s module: the native kernel when built, its
label says which) against the dense 1×1 conv of the same pruned weight (oneDNN), both on channels-last input;
then the whole MobileNet-v1 (stem, 13 depthwise-separable blocks, head) dense against ``sparsify(model, 0.9)``.
Goal: ≥ 2× at 1 thread (the paper reports 1.3–2.4× on ARM).

``sparse3d``: a submanifold 3×3×3 convolution, 32 → 32 channels, on one 64³ grid at 1 % and 5 % random occupancy
and on a sphere shell (about 5 %), against dense ``conv3d`` of the zero-filled grid and against spconv's
``SubMConv3d`` (CPU, where it is installed; both with their rulebooks built once and reused; ours runs the native
kernel when built, its label says which). One case rebuilds our rulebook on every call. Both sides take the dense
grid ``(1, 32, 64, 64, 64)``; the sparse sides read their features at the active sites (a gather of M × 32
values). Goal: ≥ 5× faster than dense, at least as fast as spconv.
"""

from __future__ import annotations

import math
from functools import partial

import torch
from torch import Tensor, nn

from convzoo.deploy.sparsify import SparsePointwiseConv2d, sparsify
from convzoo.kernels import sparse_conv3d_native
from convzoo.ops.sparse_conv3d import SparseConv3d, Voxels
from convzoo.profile.bench import Case
from convzoo.registry import SUITES

__all__ = ["sparse1x1_cases", "sparse3d_cases", "mobilenet_v1"]

# (C_in, C_out, side) of MobileNet-v1's 1×1 convs at 224² (Howard et al. 2017, Table 1); 512→512 @ 14 runs 5×
MOBILENET_V1_POINTWISE = (
    (32, 64, 112),
    (64, 128, 56),
    (128, 128, 56),
    (128, 256, 28),
    (256, 256, 28),
    (256, 512, 14),
    (512, 512, 14),
    (512, 1024, 7),
    (1024, 1024, 7),
)
QUICK_POINTWISE = ((16, 32, 8), (32, 32, 4))


def mobilenet_v1(width: float = 1.0, num_classes: int = 1000) -> nn.Sequential:
    """MobileNet-v1 (Howard et al. 2017, Table 1): 3×3 stem, 13 depthwise-separable blocks, pool, linear."""

    def c(n: int) -> int:
        return max(8, int(n * width))

    def block(c_in: int, c_out: int, stride: int) -> list[nn.Module]:
        return [
            nn.Conv2d(c_in, c_in, 3, stride, 1, groups=c_in, bias=False),
            nn.BatchNorm2d(c_in),
            nn.ReLU(inplace=True),
            nn.Conv2d(c_in, c_out, 1, bias=False),
            nn.BatchNorm2d(c_out),
            nn.ReLU(inplace=True),
        ]

    plan = [(32, 64, 1), (64, 128, 2), (128, 128, 1), (128, 256, 2), (256, 256, 1), (256, 512, 2)]
    plan += [(512, 512, 1)] * 5 + [(512, 1024, 2), (1024, 1024, 1)]
    layers: list[nn.Module] = [nn.Conv2d(3, c(32), 3, 2, 1, bias=False), nn.BatchNorm2d(c(32)), nn.ReLU(inplace=True)]
    for c_in, c_out, stride in plan:
        layers += block(c(c_in), c(c_out), stride)
    layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(c(1024), num_classes)]
    return nn.Sequential(*layers)


def _pointwise(c_in: int, c_out: int, side: int, batch: int) -> tuple[nn.Module, nn.Module, Tensor]:
    torch.manual_seed(0)
    sparse = sparsify(nn.Conv2d(c_in, c_out, 1, bias=False), sparsity=0.9)
    dense = nn.Conv2d(c_in, c_out, 1, bias=False)
    with torch.no_grad():
        dense.weight.copy_(sparse.csr().to_dense()[:, :, None, None])
    dense = dense.to(memory_format=torch.channels_last).eval()
    x = torch.randn(batch, c_in, side, side).contiguous(memory_format=torch.channels_last)
    return sparse, dense, x


def _whole(batch: int, quick: bool) -> tuple[nn.Module, nn.Module, Tensor]:
    torch.manual_seed(0)
    dense = mobilenet_v1(0.25 if quick else 1.0).eval()
    sparse = sparsify(dense, sparsity=0.9).to(memory_format=torch.channels_last)
    dense = dense.to(memory_format=torch.channels_last)
    side = 32 if quick else 224
    return sparse, dense, torch.randn(batch, 3, side, side).contiguous(memory_format=torch.channels_last)


def _label() -> str:
    probe = SparsePointwiseConv2d.from_conv(nn.Conv2d(1, 1, 1))
    return f"CSR 1×1 90% ({probe.path})"


@SUITES.register(
    "sparse1x1",
    kind="suite",
    papers=("fast-sparse",),
    summary="CSR 1×1 conv at 90% sparsity vs dense 1×1 at MobileNet-v1 shapes; sparsified MobileNet-v1 vs dense",
)
def sparse1x1_cases(quick: bool = False, batch: int | None = None) -> list[Case]:
    """Per MobileNet-v1 pointwise shape: the sparse 1×1 (A) against the dense 1×1 (B); then the whole network."""
    batch = batch or 1
    label = _label()
    cases = []
    for c_in, c_out, side in QUICK_POINTWISE if quick else MOBILENET_V1_POINTWISE:
        build = partial(_pointwise, c_in, c_out, side, batch)
        cases.append(Case(f"{batch}x{c_in}x{side}x{side}→{c_out}", label, "dense 1×1 (pruned weight)", build))
    name = f"mobilenet-v1 {batch}x3x{32 if quick else 224}²"
    cases.append(Case(name, "sparsify(0.9)", "dense", partial(_whole, batch, quick), same_output=False))
    return cases


# ---------------------------------------------------------------- sparse3d


class _Submanifold(nn.Module):
    """Our submanifold conv on the sites ``coords``, reading their features from a dense grid input.
    ``rebuild``: clone the coordinates on every call, so the rulebook is built every time."""

    def __init__(self, conv: SparseConv3d, coords: Tensor, size: int, rebuild: bool = False) -> None:
        super().__init__()
        self.conv, self.coords, self.size, self.rebuild = conv, coords, size, rebuild

    def forward(self, grid: Tensor) -> Tensor:
        coords = self.coords.clone() if self.rebuild else self.coords
        b, i, j, k = coords.unbind(1)
        feats = grid.permute(0, 2, 3, 4, 1)[b, i, j, k]  # (M, C)
        return self.conv(Voxels(coords, feats, (self.size,) * 3, grid.shape[0])).feats


class _Spconv(nn.Module):
    """spconv's ``SubMConv3d`` on the same sites; its indices are generated once (indice_key) and reused."""

    def __init__(self, conv: SparseConv3d, coords: Tensor, size: int) -> None:
        super().__init__()
        import spconv.pytorch as spconv

        self.spconv = spconv
        self.conv = spconv.SubMConv3d(conv.in_channels, conv.out_channels, 3, padding=1, bias=False, indice_key="s")
        with torch.no_grad():  # spconv keeps (C_out, kx, ky, kz, C_in)
            self.conv.weight.copy_(conv.weight.permute(0, 2, 3, 4, 1))
        self.coords = coords
        feats = torch.zeros(len(coords), conv.in_channels)
        self.base = spconv.SparseConvTensor(feats, coords.int(), [size] * 3, 1)
        self.conv(self.base)  # generates and caches the indices in base's indice_dict

    def forward(self, grid: Tensor) -> Tensor:
        b, i, j, k = self.coords.unbind(1)
        feats = grid.permute(0, 2, 3, 4, 1)[b, i, j, k]
        return self.conv(self.base.replace_feature(feats)).features


def _sites(pattern: str, size: int, occupancy: float) -> Tensor:
    """``(M, 4)`` coordinates: ``random`` (each site active with probability ``occupancy``) or ``shell`` (a sphere
    shell about the grid centre, as thick as gives ``occupancy``)."""
    g = torch.Generator().manual_seed(0)
    if pattern == "random":
        active = torch.rand(size, size, size, generator=g) < occupancy
    else:
        axis = torch.arange(size) - (size - 1) / 2
        radius = torch.sqrt(axis[:, None, None] ** 2 + axis[None, :, None] ** 2 + axis[None, None, :] ** 2)
        r0 = 0.35 * size
        thickness = occupancy * size**3 / (4 * math.pi * r0**2)
        active = (radius - r0).abs() < thickness / 2
    coords = active.nonzero()
    return torch.cat([torch.zeros(len(coords), 1, dtype=torch.int64), coords], 1)


def _sparse3d(pattern: str, occupancy: float, size: int, channels: int, versus: str):
    torch.manual_seed(0)
    coords = _sites(pattern, size, occupancy)
    conv = SparseConv3d(channels, channels, 3, bias=False).eval()
    grid = torch.zeros(1, channels, size, size, size)
    b, i, j, k = coords.unbind(1)
    grid[b, :, i, j, k] = torch.randn(len(coords), channels)
    ours = _Submanifold(conv, coords, size, rebuild=versus == "rebuild")
    if versus == "spconv":
        try:
            return ours, _Spconv(conv, coords, size), grid
        except ImportError as error:
            raise RuntimeError(f"spconv is not installed ({error}); pip install convzoo[sparse]") from None
    dense = nn.Conv3d(channels, channels, 3, padding=1, bias=False)
    with torch.no_grad():
        dense.weight.copy_(conv.weight)
    return ours, dense.eval(), grid


@SUITES.register(
    "sparse3d",
    kind="suite",
    papers=("focal-sparse-conv",),
    summary="submanifold sparse conv3d (3³, 32→32) at ≤ 5% occupancy of 64³ vs dense conv3d and spconv",
)
def sparse3d_cases(quick: bool = False, batch: int | None = None) -> list[Case]:
    """Per occupancy pattern: our submanifold conv (A) against dense ``conv3d`` and spconv (B)."""
    if batch not in (None, 1):
        raise ValueError(f"bench sparse3d: measures one grid (batch 1), got batch={batch}")
    size, channels = (16, 8) if quick else (64, 32)
    path = f"native {sparse_conv3d_native.isa()}" if sparse_conv3d_native.available() else "torch"
    ours = f"submanifold (cached rulebook, {path})"
    cases = []
    for pattern, occupancy in (("random", 0.01), ("random", 0.05), ("shell", 0.05)):
        shape = f"{size}³ {pattern} {occupancy:.0%}"
        build = partial(_sparse3d, pattern, occupancy, size, channels)
        cases.append(Case(f"{shape} dense", ours, "dense conv3d", partial(build, "dense")))
        cases.append(Case(f"{shape} spconv", ours, "spconv SubMConv3d", partial(build, "spconv")))
    rebuild = partial(_sparse3d, "random", 0.05, size, channels, "rebuild")
    cases.append(
        Case(f"{size}³ random 5% rulebook per call", "submanifold (rulebook per call)", "dense conv3d", rebuild)
    )
    return cases
