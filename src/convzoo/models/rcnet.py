"""RCNet (S99): Zong et al., "RCNet: Reverse Feature Pyramid and Cross-scale Shift Network for Object Detection",
as a neck any dense head uses (``neck="rcnet"`` of FCN or DCFAM, or the ``rcnet_seg`` model).

:class:`RCNeck` maps a backbone's stage outputs ``[C_1, ..., C_L]`` (finest first, channels ``c_i``) to
``[P_1, ..., P_L]`` of the same sizes with ``channels`` channels each:

- RevFP, the reverse feature pyramid: one bottom-up pass with local top-down fusion. Lateral 1×1 convs give
  ``L_i``; ``P_1 = conv3×3(fuse(L_1, up(L_2)))`` and ``P_i = conv3×3(fuse(L_i, down(P_{i−1}), up(L_{i+1})))``,
  where ``down`` is a stride-2 3×3 conv, ``up`` bilinear resampling and ``fuse`` a weighted sum with learned
  non-negative weights normalised to sum to 1 (one set per level). The single pass replaces FPN's top-down plus
  PANet's bottom-up paths.
- CSN, the cross-scale shift network: every ``P_i`` is resampled to the middle level's size and stacked along a
  scale axis ``(N, L, C, h, w)``; ``C/shift_div`` channels move one level up the scale axis and as many one level
  down (zeros shifted in at the ends), as a temporal shift does along time; each level's shifted map is resampled
  back to its size, passed through a 3×3 conv and added to ``P_i``.

Departures: the fusion weights are the normalised scalar weights of fast normalised fusion, not the paper's
exact gating; the paper's detection heads are not included — the neck serves the dense heads here.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from convzoo.core.validate import check_int
from convzoo.models._dense import NECKS, ConvBNReLU, Encoder, register_dense, resize_to

__all__ = ["RCNeck", "RCNetSeg", "RCNetSegConfig", "cross_scale_shift"]


def cross_scale_shift(stack: Tensor, fold: int) -> Tensor:
    """``stack`` (N, L, C, h, w): channels ``[0, fold)`` taken from level ``i − 1``, ``[fold, 2·fold)`` from level
    ``i + 1`` (zeros past the ends), the rest unchanged."""
    out = torch.zeros_like(stack)
    out[:, 1:, :fold] = stack[:, :-1, :fold]  # moved one level up the scale axis
    out[:, :-1, fold : 2 * fold] = stack[:, 1:, fold : 2 * fold]  # moved one level down
    out[:, :, 2 * fold :] = stack[:, :, 2 * fold :]
    return out


class _Fuse(nn.Module):
    def __init__(self, inputs: int, channels: int) -> None:
        super().__init__()
        self.weights = nn.Parameter(torch.ones(inputs))
        self.conv = ConvBNReLU(channels, channels)

    def forward(self, inputs: list[Tensor]) -> Tensor:
        w = F.relu(self.weights)
        w = w / (w.sum() + 1e-4)
        return self.conv(sum(wi * x for wi, x in zip(w, inputs, strict=True)))


class RCNeck(nn.Module):
    """RevFP + CSN: ``[C_1..C_L]`` → ``[P_1..P_L]`` of ``channels`` channels each, sizes kept."""

    def __init__(self, in_channels: list[int], channels: int = 128, shift_div: int = 8) -> None:
        super().__init__()
        check_int(channels, "channels", "rcnet")
        check_int(shift_div, "shift_div", "rcnet", low=2)
        if len(in_channels) < 2:
            raise ValueError(f"rcnet: the neck needs at least two stages, got {len(in_channels)}")
        levels = len(in_channels)
        self.laterals = nn.ModuleList([nn.Conv2d(c, channels, 1) for c in in_channels])
        self.downs = nn.ModuleList([nn.Conv2d(channels, channels, 3, 2, 1) for _ in range(levels - 1)])
        self.fuses = nn.ModuleList([_Fuse(2 if i in (0, levels - 1) else 3, channels) for i in range(levels)])
        self.shift_convs = nn.ModuleList([nn.Conv2d(channels, channels, 3, padding=1) for _ in range(levels)])
        self.fold = channels // shift_div
        self.channels = [channels] * levels

    def forward(self, features: list[Tensor]) -> list[Tensor]:
        laterals = [conv(x) for conv, x in zip(self.laterals, features, strict=True)]
        levels = len(laterals)
        outputs: list[Tensor] = []
        for i, lateral in enumerate(laterals):  # RevFP: bottom-up, each level taking its coarser neighbour
            size = lateral.shape[-2:]
            inputs = [lateral]
            if i > 0:
                inputs.append(resize_to(self.downs[i - 1](outputs[-1]), size))
            if i < levels - 1:
                inputs.append(resize_to(laterals[i + 1], size))
            outputs.append(self.fuses[i](inputs))
        middle = outputs[levels // 2].shape[-2:]
        stack = torch.stack([resize_to(p, middle) for p in outputs], 1)  # (N, L, C, h, w)
        shifted = cross_scale_shift(stack, self.fold)
        return [
            p + conv(resize_to(shifted[:, i], p.shape[-2:]))
            for i, (p, conv) in enumerate(zip(outputs, self.shift_convs, strict=True))
        ]


NECKS["rcnet"] = RCNeck


@dataclass(frozen=True)
class RCNetSegConfig:
    backbone: str = "resnet18"
    num_classes: int = 21
    in_chans: int = 3
    op: str | None = None
    channels: int = 128


class RCNetSeg(nn.Module):
    """Backbone → :class:`RCNeck` → a semantic-FPN head: each level conv-BN-ReLU, resampled to the finest level
    and summed, a 1×1 classifier, bilinear to the input size. ``(N, C, H, W)`` → ``(N, num_classes, H, W)``."""

    name = "rcnet_seg"

    def __init__(self, cfg: RCNetSegConfig) -> None:
        super().__init__()
        check_int(cfg.num_classes, "num_classes", "rcnet_seg")
        self.encoder = Encoder(
            cfg.backbone, in_chans=cfg.in_chans, op=cfg.op, neck="rcnet", neck_channels=cfg.channels, owner="rcnet_seg"
        )
        self.levels = nn.ModuleList([ConvBNReLU(c, cfg.channels) for c in self.encoder.channels])
        self.classifier = nn.Conv2d(cfg.channels, cfg.num_classes, 1)

    def forward(self, x: Tensor) -> Tensor:
        features = self.encoder(x)
        finest = features[0].shape[-2:]
        fused = sum(resize_to(level(f), finest) for level, f in zip(self.levels, features, strict=True))
        return resize_to(self.classifier(fused), x.shape[-2:])


register_dense(
    "rcnet_seg",
    RCNetSeg,
    RCNetSegConfig(),
    papers=("rcnet",),
    params=None,
    params_source="the paper reports detectors only; no count for a segmentation head",
    summary="RCNet (S99) neck (reverse feature pyramid + cross-scale shift) under a semantic-FPN head",
)
