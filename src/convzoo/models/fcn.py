"""FCN-32s/16s/8s (S23 = S48): Long, Shelhamer & Darrell, "Fully Convolutional Networks for Semantic Segmentation".

``(N, in_chans, H, W)`` → class scores ``(N, num_classes, H, W)``, the input's size for any ``H, W`` (odd ones
included). The encoder is any registered classifier (``backbone``) through ``features_only=True``; its last stage
is scored by a 1×1 convolution, and the skip architecture (section 4.2) fuses finer stages: FCN-16s adds the
scores of the stage before the last, FCN-8s those of the one before that. Each fusion upsamples the coarser scores
by the ratio of the two stages' strides with a transposed convolution initialised to bilinear interpolation and
learned, crops it to the finer map (the paper's crop layer) and sums; the fused scores are resampled bilinearly
(fixed, as the paper's last upsampling) to the input size. The scoring layers start at zero, as the paper's.

``head_channels > 0`` puts the paper's convolutionalised classifier before the last scoring layer: fc6 as a
``head_kernel``×``head_kernel`` conv to ``head_channels`` and fc7 as a 1×1 conv, each with ReLU and dropout
(``fcn8s_vgg16`` is the paper's FCN-VGG16: 134M parameters, Table 1). ``neck`` (``"rcnet"``) puts a
registered neck between the backbone and the skips.

Departures: the paper pads the input by 100 pixels and has fc6 unpadded, cropping at every fusion; here fc6 is
padded (same size) and the output is resampled to the input size, which makes every input size exact without the
padding. Any stride ratio between the fused stages is taken (not only 2), and a stage of the same stride is
fused without upsampling.
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import Tensor, nn

from convzoo.core.validate import check_choice, check_int, check_number
from convzoo.models._dense import Encoder, LearnedUpsample, fit_to, register_dense, resize_to

__all__ = ["FCN", "FCNConfig"]


@dataclass(frozen=True)
class FCNConfig:
    """``skips``: 0 (FCN-32s), 1 (FCN-16s) or 2 (FCN-8s) finer stages fused into the last stage's scores."""

    skips: int = 2
    backbone: str = "resnet18"
    num_classes: int = 21
    in_chans: int = 3
    op: str | None = None
    head_channels: int = 0
    head_kernel: int = 7
    dropout: float = 0.5
    neck: str | None = None


class FCN(nn.Module):
    """FCN with ``skips`` fused stages over any backbone; see the module docstring."""

    name = "fcn"

    def __init__(self, cfg: FCNConfig) -> None:
        super().__init__()
        owner = "fcn"
        check_choice(cfg.skips, (0, 1, 2), "skips", owner)
        check_int(cfg.num_classes, "num_classes", owner)
        check_int(cfg.head_channels, "head_channels", owner, low=0)
        check_int(cfg.head_kernel, "head_kernel", owner)
        check_number(cfg.dropout, "dropout", owner, low=0.0, high=1.0)
        self.cfg = cfg
        self.backbone = Encoder(cfg.backbone, in_chans=cfg.in_chans, op=cfg.op, neck=cfg.neck, owner=owner)
        stages = len(self.backbone.channels)
        if stages < cfg.skips + 1:
            raise ValueError(
                f"{owner}: skips={cfg.skips} fuses {cfg.skips + 1} stages but backbone {cfg.backbone!r} has {stages}"
            )
        used = list(range(stages - 1 - cfg.skips, stages))  # stage indices, finest first
        self.stages = used
        channels = self.backbone.channels[used[-1]]
        head: list[nn.Module] = []
        if cfg.head_channels:
            k, width = cfg.head_kernel, cfg.head_channels
            head += [nn.Conv2d(channels, width, k, padding=k // 2), nn.ReLU(inplace=True), nn.Dropout2d(cfg.dropout)]
            head += [nn.Conv2d(width, width, 1), nn.ReLU(inplace=True), nn.Dropout2d(cfg.dropout)]
            channels = width
        self.head = nn.Sequential(*head)
        # scoring layers, coarsest first: score_fr, score_pool4, score_pool3 in the paper's VGG naming
        self.scores = nn.ModuleList([nn.Conv2d(channels, cfg.num_classes, 1)])
        self.ups = nn.ModuleList()
        reductions = self.backbone.reductions
        for fine, coarse in zip(reversed(used[:-1]), reversed(used[1:]), strict=True):
            self.scores.append(nn.Conv2d(self.backbone.channels[fine], cfg.num_classes, 1))
            ratio = reductions[coarse] / reductions[fine]
            if ratio == 1:
                self.ups.append(nn.Identity())
            elif ratio == int(ratio) and ratio > 1:
                self.ups.append(LearnedUpsample(cfg.num_classes, int(ratio)))
            else:
                raise ValueError(
                    f"{owner}: backbone {cfg.backbone!r} stage strides {reductions[fine]} → {reductions[coarse]} "
                    "are not an integer ratio"
                )
        for score in self.scores:
            nn.init.zeros_(score.weight)
            nn.init.zeros_(score.bias)

    def forward(self, x: Tensor) -> Tensor:
        size = x.shape[-2:]
        features = self.backbone(x)
        scores = self.scores[0](self.head(features[self.stages[-1]]))  # (N, K, H/r, W/r)
        for i, stage in enumerate(reversed(self.stages[:-1])):
            skip = features[stage]  # (N, C_s, H/r_s, W/r_s)
            scores = fit_to(self.ups[i](scores), skip.shape[-2:]) + self.scores[i + 1](skip)
        return resize_to(scores, size)  # (N, K, H, W)


_SOURCE = "no published count for a {} backbone (the paper's counts are of VGG-16, see fcn8s_vgg16)"
for _skips, _stride in ((0, 32), (1, 16), (2, 8)):
    register_dense(
        f"fcn{_stride}s",
        FCN,
        FCNConfig(skips=_skips),
        papers=("fcn",),
        params=None,
        params_source=_SOURCE.format("ResNet-18"),
        summary=f"FCN-{_stride}s (S23): skip fusion down to stride {_stride} on any backbone (default resnet18)",
    )
register_dense(
    "fcn8s_vgg16",
    FCN,
    FCNConfig(skips=2, backbone="vgg16", head_channels=4096),
    papers=("fcn",),
    params=134_000_000,
    params_source="paper Table 1 (FCN-VGG16: 134M parameters, 21 classes of PASCAL VOC)",
    summary="FCN-8s (S23) on VGG-16 with fc6/fc7 as convolutions, as the paper",
)
