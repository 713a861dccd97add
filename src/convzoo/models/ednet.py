"""EDNet (S38): Zhang et al., "EDNet: Efficient Disparity Estimation with Cost Volume Combination and
Attention-based Spatial Residual".

``(left, right)`` each ``(N, in_chans, H, W)`` → the left view's disparity ``(N, H, W)`` in pixels (``left[y, x]``
is seen at ``right[y, x − d]``), the input's size for any ``H, W``.

1. Shared features of both views at stride ``cost_stride`` (4): the paper's extractor (7×7 stride-2 conv, a
   stride-2 residual block), or the stage of that stride of any registered classifier (``backbone``, through
   ``features_only=True``, so ``op=`` swaps reach it).
2. The combined cost volume over ``D = max_disparity / cost_stride`` candidate disparities: the correlation volume
   ``corr[d, y, x] = (1/C) Σ_c f_l[c, y, x] · f_r[c, y, x − d]`` (0 where ``x − d < 0``), the *squeezed*
   concatenation volume — the 4-d volume ``[f_l(x); f_r(x − d)]`` (2C channels per disparity) squeezed by a
   1×1×1 3-d convolution to ``squeeze`` channels and folded into ``squeeze · D`` 2-d channels — and the left
   features redirected by a 1×1 conv; concatenated along channels.
3. A 2-d encoder-decoder aggregates the volume and regresses the disparity at stride ``cost_stride``.
4. Attention-based spatial residual refinement at each finer scale (stride ``cost_stride / 2``, ..., 1): the
   disparity is upsampled (values scaled with it), the right image warped by it, and from the left image, the
   warping error and the disparity a small conv net computes a residual, weighted per pixel by a spatial
   attention map (sigmoid of a 7×7 conv over the channel mean and max of its features) and added.

The squeezed volume is computed without building the 2C-channel 4-d volume: a 1×1×1 conv of ``[f_l; f_r(x−d)]``
is ``A f_l(x) + B f_r(x − d) + b``, so it is ``A f_l`` plus the shifted ``B f_r`` (equal to the explicit volume;
tested). Departures: layer widths are set by ``width`` and were not checked against the official code; one
loss on the final disparity (the paper supervises every scale); the 4-d volume is zero-padded at ``x − d < 0``.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from convzoo.core.validate import check_choice, check_int
from convzoo.models._dense import Backbone, ConvBNReLU, fit_to, register_dense

__all__ = ["EDNet", "EDNetConfig", "correlation_volume", "squeezed_concat_volume", "warp_right"]


@dataclass(frozen=True)
class EDNetConfig:
    max_disparity: int = 192
    backbone: str | None = None
    in_chans: int = 3
    op: str | None = None
    width: int = 64
    squeeze: int = 4
    cost_stride: int = 4


def correlation_volume(left: Tensor, right: Tensor, disparities: int) -> Tensor:
    """``(N, C, H, W)`` ×2 → ``(N, D, H, W)``: ``mean_c left[c, y, x] · right[c, y, x − d]``, 0 where ``x < d``."""
    n, _, h, w = left.shape
    volume = left.new_zeros(n, disparities, h, w)
    for d in range(min(disparities, w)):
        volume[:, d, :, d:] = (left[..., d:] * right[..., : w - d]).mean(1)
    return volume


def squeezed_concat_volume(left: Tensor, right: Tensor, squeeze: nn.Conv3d, disparities: int) -> Tensor:
    """The concatenation volume ``[left(x); right(x − d)]`` (zero right features where ``x < d``) passed through
    the 1×1×1 ``squeeze`` conv and folded: ``(N, C, H, W)`` ×2 → ``(N, S·D, H, W)``, channel ``s·D + d``."""
    n, c, h, w = left.shape
    weight = squeeze.weight.flatten(1)  # (S, 2C)
    a, b = weight[:, :c], weight[:, c:]
    from_left = torch.einsum("sc,nchw->nshw", a, left)  # (N, S, H, W)
    from_right = torch.einsum("sc,nchw->nshw", b, right)
    volume = from_left[:, :, None].repeat(1, 1, disparities, 1, 1)  # (N, S, D, H, W)
    for d in range(min(disparities, w)):
        volume[:, :, d, :, d:] += from_right[..., : w - d]
    if squeeze.bias is not None:
        volume = volume + squeeze.bias.view(1, -1, 1, 1, 1)
    return volume.flatten(1, 2)  # (N, S·D, H, W)


def warp_right(right: Tensor, disparity: Tensor) -> Tensor:
    """``right`` (N, C, H, W) sampled at ``(y, x − d)`` (bilinear, zeros outside): the left view it predicts."""
    n, _, h, w = right.shape
    ys, xs = torch.meshgrid(
        torch.arange(h, dtype=right.dtype, device=right.device),
        torch.arange(w, dtype=right.dtype, device=right.device),
        indexing="ij",
    )
    x = xs - disparity  # (N, H, W)
    grid = torch.stack((2 * (x + 0.5) / w - 1, (2 * (ys + 0.5) / h - 1).expand_as(x)), dim=-1)  # (N, H, W, 2)
    return F.grid_sample(right, grid, mode="bilinear", padding_mode="zeros", align_corners=False)


class _ResBlock(nn.Module):
    def __init__(self, in_channels: int, out_channels: int, stride: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            ConvBNReLU(in_channels, out_channels, 3, stride),
            nn.Conv2d(out_channels, out_channels, 3, 1, 1, bias=False),
            nn.BatchNorm2d(out_channels),
        )
        self.shortcut = nn.Sequential(
            nn.Conv2d(in_channels, out_channels, 1, stride, bias=False), nn.BatchNorm2d(out_channels)
        )

    def forward(self, x: Tensor) -> Tensor:
        return F.relu(self.body(x) + self.shortcut(x))


class _Extractor(nn.Module):
    """The paper's shared features: 7×7 stride-2 conv to ``width``, a stride-2 residual block to ``2·width``."""

    def __init__(self, in_chans: int, width: int) -> None:
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(in_chans, width, 7, 2, 3, bias=False), nn.BatchNorm2d(width), nn.ReLU(True))
        self.block = _ResBlock(width, 2 * width, 2)
        self.channels = 2 * width

    def forward(self, x: Tensor) -> Tensor:
        return self.block(self.stem(x))


class _BackboneStage(nn.Module):
    """The stage of a registered classifier at ``stride`` as the shared features."""

    def __init__(self, name: str, in_chans: int, op: str | None, stride: int) -> None:
        super().__init__()
        self.backbone = Backbone(name, in_chans=in_chans, op=op, owner="ednet")
        if stride not in self.backbone.reductions:
            raise ValueError(
                f"ednet: backbone {name!r} has no stage at stride {stride} (its strides: {self.backbone.reductions})"
            )
        self.index = self.backbone.reductions.index(stride)
        self.channels = self.backbone.channels[self.index]

    def forward(self, x: Tensor) -> Tensor:
        return self.backbone(x)[self.index]


class SpatialResidual(nn.Module):
    """Attention-based spatial residual: ``d + a ⊙ r`` from the left image, the warping error and ``d``."""

    def __init__(self, in_chans: int, width: int) -> None:
        super().__init__()
        self.features = nn.Sequential(ConvBNReLU(2 * in_chans + 1, width), ConvBNReLU(width, width))
        self.attention = nn.Conv2d(2, 1, 7, padding=3)
        self.residual = nn.Conv2d(width, 1, 3, padding=1)

    def forward(self, left: Tensor, right: Tensor, disparity: Tensor) -> Tensor:
        error = left - warp_right(right, disparity)  # (N, C, H, W)
        feats = self.features(torch.cat((left, error, disparity[:, None]), 1))  # (N, width, H, W)
        pooled = torch.cat((feats.mean(1, keepdim=True), feats.amax(1, keepdim=True)), 1)  # (N, 2, H, W)
        attention = torch.sigmoid(self.attention(pooled))  # (N, 1, H, W)
        return F.relu(disparity + (attention * self.residual(feats))[:, 0])


class EDNet(nn.Module):
    """EDNet; see the module docstring. ``forward(left, right)`` → ``(N, H, W)`` disparity in pixels."""

    name = "ednet"

    def __init__(self, cfg: EDNetConfig) -> None:
        super().__init__()
        owner = "ednet"
        check_choice(cfg.cost_stride, (1, 2, 4, 8), "cost_stride", owner)
        check_int(cfg.max_disparity, "max_disparity", owner, low=cfg.cost_stride)
        check_int(cfg.width, "width", owner)
        check_int(cfg.squeeze, "squeeze", owner)
        self.cfg = cfg
        self.disparities = cfg.max_disparity // cfg.cost_stride
        if cfg.backbone is None:
            if cfg.op is not None:
                raise ValueError("ednet: op= replaces a backbone's convs; name a backbone (backbone=NAME) to use it")
            self.features: nn.Module = _Extractor(cfg.in_chans, cfg.width)
        else:
            self.features = _BackboneStage(cfg.backbone, cfg.in_chans, cfg.op, cfg.cost_stride)
        c, w = self.features.channels, cfg.width
        self.squeeze = nn.Conv3d(2 * c, cfg.squeeze, 1)
        self.redirect = ConvBNReLU(c, w // 2, 1)
        volume = self.disparities * (1 + cfg.squeeze) + w // 2
        self.enc0 = ConvBNReLU(volume, 2 * w)
        self.enc1 = ConvBNReLU(2 * w, 4 * w, 3, 2)
        self.enc2 = ConvBNReLU(4 * w, 4 * w, 3, 2)
        self.dec1 = ConvBNReLU(8 * w, 2 * w)
        self.dec0 = ConvBNReLU(4 * w, 2 * w)
        self.predict = nn.Conv2d(2 * w, 1, 3, padding=1)
        scales = cfg.cost_stride.bit_length() - 1  # refinements at strides cost_stride/2, ..., 1
        self.refine = nn.ModuleList([SpatialResidual(cfg.in_chans, w // 2) for _ in range(scales)])

    def cost_volume(self, left: Tensor, right: Tensor) -> Tensor:
        """The combined volume of the feature maps ``(N, C, h, w)``: ``(N, D + S·D + width/2, h, w)``."""
        corr = correlation_volume(left, right, self.disparities)  # (N, D, h, w)
        squeezed = squeezed_concat_volume(left, right, self.squeeze, self.disparities)  # (N, S·D, h, w)
        return torch.cat((corr, squeezed, self.redirect(left)), 1)

    def forward(self, left: Tensor, right: Tensor) -> Tensor:
        if left.shape != right.shape:
            raise ValueError(f"ednet: left {tuple(left.shape)} and right {tuple(right.shape)} differ")
        size = left.shape[-2:]
        both = self.features(torch.cat((left, right)))  # shared weights: (2N, C, h, w)
        fl, fr = both.chunk(2)
        e0 = self.enc0(self.cost_volume(fl, fr))  # (N, 2w, h, w)
        e1 = self.enc1(e0)
        e2 = self.enc2(e1)
        up = fit_to(F.interpolate(e2, scale_factor=2, mode="bilinear", align_corners=False), e1.shape[-2:])
        d1 = self.dec1(torch.cat((up, e1), 1))
        up = fit_to(F.interpolate(d1, scale_factor=2, mode="bilinear", align_corners=False), e0.shape[-2:])
        d0 = self.dec0(torch.cat((up, e0), 1))
        disparity = F.relu(self.predict(d0))[:, 0]  # (N, h, w) in pixels of stride cost_stride
        stride = self.cfg.cost_stride
        for refine in self.refine:
            stride //= 2
            target = (-(-size[0] // stride), -(-size[1] // stride))
            disparity = F.interpolate(disparity[:, None], size=target, mode="bilinear", align_corners=False)[:, 0]
            disparity = disparity * 2  # in pixels of the finer scale
            l_s, r_s = (F.adaptive_avg_pool2d(v, target) if stride > 1 else v for v in (left, right))
            disparity = refine(l_s, r_s, disparity)
        if disparity.shape[-2:] != size:  # cost_stride 1 skips refinement; any stride is resampled exactly
            disparity = F.interpolate(disparity[:, None], size=size, mode="bilinear", align_corners=False)[:, 0]
            disparity = disparity * stride
        return disparity  # (N, H, W)


register_dense(
    "ednet",
    EDNet,
    EDNetConfig(),
    papers=("ednet",),
    params=None,
    params_source="no published parameter count was found for the paper's configuration",
    summary="EDNet (S38): combined cost volume (correlation + squeezed concatenation), attention-based residuals",
    kind="disparity",
    input_size=(3, 64, 64),
)
