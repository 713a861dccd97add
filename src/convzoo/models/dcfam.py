"""DCFAM (S51): the densely connected feature aggregation module of Wang et al., "A Novel Transformer Based
Semantic Segmentation Scheme for Fine-Resolution Remote Sensing Images" (DC-Swin), on any backbone.

``(N, in_chans, H, W)`` → ``(N, num_classes, H, W)``. The decoder takes the backbone's last four stages
``x1..x4`` (strides r, 2r, 4r, 8r — 4, 8, 16, 32 for ResNet or Swin) and aggregates them densely:

- ``out4 = conv1×1(x4) + down(SSA(down(x2)))`` and ``out3 = SSA(x3) + down(SCA(down(x1)))``, where ``down`` is a
  stride-2 residual conv block, SSA the *shared* spatial attention and SCA the *shared* channel attention (one
  module each, used at both places);
- ``out2 = SCA(x2) + LF(out4)`` and ``out1 = LF(out3) + conv1×1(x1)``, where ``LF`` is the large-field upsampling
  connection: two dilated (rates 6 and 12) depthwise-separable conv-BN-ReLU, each followed by ×2 nearest
  upsampling, narrowing the channels stage by stage;
- the head: ``out1 + up(out2)`` → dropout → 3×3 conv-BN-ReLU → 1×1 to the classes → bilinear to the input size.

SSA and SCA are the paper's linear attention: softmax replaced by its first-order Taylor expansion on
L2-normalised queries and keys, ``y_i = x_i + γ Σ_j (1 + q̂_i·k̂_j) v_j / Σ_j (1 + q̂_i·k̂_j)``, computed in
linear time (``Σ_j v_j + q̂_i·(K̂ᵀV)``); SSA attends over positions (queries and keys 1×1 convs to C/8 channels,
values a 1×1 conv), SCA over channels (queries, keys and values the features themselves); γ starts at 0.

Departures: any registered classifier replaces the Swin encoder (``backbone``, through ``features_only=True``);
upsampled maps are cropped or edge-padded to the finer map so that odd sizes work, and the final ×4 is a
bilinear resampling to exactly the input size. ``neck`` (``"rcnet"``) puts a registered neck before DCFAM.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from convzoo.core.validate import check_int, check_number
from convzoo.models._dense import ConvBNReLU, Encoder, fit_to, register_dense, resize_to

__all__ = ["DCFAMNet", "DCFAMConfig", "DCFAM", "SharedSpatialAttention", "SharedChannelAttention"]


@dataclass(frozen=True)
class DCFAMConfig:
    backbone: str = "resnet18"
    num_classes: int = 6
    in_chans: int = 3
    op: str | None = None
    dropout: float = 0.05
    rates: tuple[int, int] = (6, 12)
    neck: str | None = None


def _unit(x: Tensor, dim: int) -> Tensor:
    return x / x.norm(dim=dim, keepdim=True).clamp_min(1e-12)


class SharedSpatialAttention(nn.Module):
    """Linear (Taylor) attention over the ``H·W`` positions: ``(N, C, H, W)`` → same, ``x + γ·attended``."""

    def __init__(self, channels: int, eps: float = 1e-6) -> None:
        super().__init__()
        self.query = nn.Conv2d(channels, max(channels // 8, 1), 1)
        self.key = nn.Conv2d(channels, max(channels // 8, 1), 1)
        self.value = nn.Conv2d(channels, channels, 1)
        self.gamma = nn.Parameter(torch.zeros(1))
        self.eps = eps

    def forward(self, x: Tensor) -> Tensor:
        n, c, h, w = x.shape
        q = _unit(self.query(x).flatten(2), 1)  # (N, C', HW), each position a unit vector
        k = _unit(self.key(x).flatten(2), 1)
        v = self.value(x).flatten(2)  # (N, C, HW)
        numerator = v.sum(-1, keepdim=True) + torch.einsum("nkp,nkc->ncp", q, torch.einsum("nkp,ncp->nkc", k, v))
        denominator = h * w + torch.einsum("nkp,nk->np", q, k.sum(-1)) + self.eps  # (N, HW)
        return x + self.gamma * (numerator / denominator[:, None]).view(n, c, h, w)


class SharedChannelAttention(nn.Module):
    """Linear (Taylor) attention over the ``C`` channels, each a vector of its ``H·W`` values."""

    def __init__(self, eps: float = 1e-6) -> None:
        super().__init__()
        self.gamma = nn.Parameter(torch.zeros(1))
        self.eps = eps

    def forward(self, x: Tensor) -> Tensor:
        n, c, h, w = x.shape
        v = x.flatten(2)  # (N, C, HW)
        unit = _unit(v, 2)  # queries and keys: each channel's map as a unit vector
        numerator = v.sum(1, keepdim=True) + torch.einsum("nip,npq->niq", unit, torch.einsum("njp,njq->npq", unit, v))
        denominator = c + torch.einsum("nip,np->ni", unit, unit.sum(1)) + self.eps  # (N, C)
        return x + self.gamma * (numerator / denominator[..., None]).view(n, c, h, w)


class _Down(nn.Module):
    """Stride-2 residual block: conv-BN-ReLU, stride-2 conv-BN, plus a stride-2 1×1 conv-BN shortcut."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            ConvBNReLU(in_channels, out_channels),
            nn.Conv2d(out_channels, out_channels, 3, 2, 1, bias=False),
            nn.BatchNorm2d(out_channels),
        )
        self.shortcut = nn.Sequential(
            nn.Conv2d(in_channels, out_channels, 1, 2, bias=False), nn.BatchNorm2d(out_channels)
        )

    def forward(self, x: Tensor) -> Tensor:
        return F.relu(self.body(x) + self.shortcut(x))


class _SeparableConvBNReLU(nn.Sequential):
    def __init__(self, in_channels: int, out_channels: int, dilation: int) -> None:
        super().__init__(
            nn.Conv2d(in_channels, in_channels, 3, padding=dilation, dilation=dilation, groups=in_channels, bias=False),
            nn.BatchNorm2d(in_channels),
            nn.Conv2d(in_channels, out_channels, 1, bias=False),
            nn.ReLU(inplace=True),
        )


class _LargeField(nn.Module):
    """Two dilated separable convs, each followed by ×2 nearest upsampling to the next finer map's size."""

    def __init__(self, channels: tuple[int, int, int], rates: tuple[int, int]) -> None:
        super().__init__()
        self.first = _SeparableConvBNReLU(channels[0], channels[1], rates[0])
        self.second = _SeparableConvBNReLU(channels[1], channels[2], rates[1])

    def forward(self, x: Tensor, sizes: tuple[tuple[int, int], tuple[int, int]]) -> Tensor:
        x = fit_to(F.interpolate(self.first(x), scale_factor=2, mode="nearest"), sizes[0])
        return fit_to(F.interpolate(self.second(x), scale_factor=2, mode="nearest"), sizes[1])


class DCFAM(nn.Module):
    """The aggregation of ``x1..x4`` (channels ``c1..c4``) into ``out1`` (stride r) and ``out2`` (stride 2r)."""

    def __init__(self, channels: tuple[int, int, int, int], rates: tuple[int, int] = (6, 12)) -> None:
        super().__init__()
        c1, c2, c3, c4 = channels
        self.conv4 = nn.Conv2d(c4, c4, 1, bias=False)
        self.conv1 = nn.Conv2d(c1, c1, 1, bias=False)
        self.lf4 = _LargeField((c4, c3, c2), rates)
        self.lf3 = _LargeField((c3, c2, c1), rates)
        self.channel_attention = SharedChannelAttention()
        self.spatial_attention = SharedSpatialAttention(c3)
        self.down12 = _Down(c1, c2)
        self.down231 = _Down(c2, c3)
        self.down232 = _Down(c2, c3)
        self.down34 = _Down(c3, c4)

    def forward(self, x1: Tensor, x2: Tensor, x3: Tensor, x4: Tensor) -> tuple[Tensor, Tensor]:
        s1, s2, s3, s4 = (t.shape[-2:] for t in (x1, x2, x3, x4))
        out4 = self.conv4(x4) + fit_to(self.down34(self.spatial_attention(fit_to(self.down232(x2), s3))), s4)
        out3 = self.spatial_attention(x3) + fit_to(
            self.down231(self.channel_attention(fit_to(self.down12(x1), s2))), s3
        )
        out2 = self.channel_attention(x2) + self.lf4(out4, (s3, s2))
        out1 = self.lf3(out3, (s2, s1)) + self.conv1(x1)
        return out1, out2


class DCFAMNet(nn.Module):
    """A backbone's last four stages → DCFAM → segmentation head; see the module docstring."""

    name = "dcfam"

    def __init__(self, cfg: DCFAMConfig) -> None:
        super().__init__()
        owner = "dcfam"
        check_int(cfg.num_classes, "num_classes", owner)
        check_number(cfg.dropout, "dropout", owner, low=0.0, high=1.0, low_open=False, high_open=True)
        if len(cfg.rates) != 2:
            raise ValueError(f"{owner}: rates must be two dilation rates, got {cfg.rates!r}")
        self.backbone = Encoder(cfg.backbone, in_chans=cfg.in_chans, op=cfg.op, neck=cfg.neck, owner=owner)
        reductions = self.backbone.reductions[-4:]
        if len(reductions) < 4 or any(b != 2 * a for a, b in zip(reductions, reductions[1:], strict=False)):
            raise ValueError(
                f"{owner}: needs four backbone stages of doubling strides (4, 8, 16, 32); {cfg.backbone!r} has "
                f"strides {self.backbone.reductions}"
            )
        channels = tuple(self.backbone.channels[-4:])
        self.decoder = DCFAM(channels, tuple(cfg.rates))
        c1, c2 = channels[0], channels[1]
        self.up = ConvBNReLU(c2, c1)
        self.dropout = nn.Dropout2d(cfg.dropout)
        self.head = nn.Sequential(ConvBNReLU(c1, c1), nn.Conv2d(c1, cfg.num_classes, 1))

    def forward(self, x: Tensor) -> Tensor:
        size = x.shape[-2:]
        x1, x2, x3, x4 = self.backbone(x)[-4:]
        out1, out2 = self.decoder(x1, x2, x3, x4)
        up = fit_to(F.interpolate(self.up(out2), scale_factor=2, mode="nearest"), out1.shape[-2:])
        return resize_to(self.head(self.dropout(out1 + up)), size)  # (N, K, H, W)


register_dense(
    "dcfam",
    DCFAMNet,
    DCFAMConfig(),
    papers=("geoseg",),
    params=None,
    params_source="no published count for a ResNet-18 encoder (the paper's DC-Swin counts include Swin)",
    summary="DCFAM (S51): densely connected feature aggregation with shared spatial/channel linear attention",
)
