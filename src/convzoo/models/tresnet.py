"""TResNet (S65, Ridnik et al., "TResNet: High Performance GPU-Dedicated Architecture", WACV 2021): TResNet-M."""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from convzoo.layers.residual import ResidualBlock
from convzoo.layers.space_to_depth import SpaceToDepth
from convzoo.layers.squeeze_excite import SqueezeExcite
from convzoo.models.base import ClassifierHead, ConvNet, FeatureInfo
from convzoo.models.registration import make_mixer, register_variant

__all__ = ["TResNetConfig", "TResNet", "BlurPool"]


@dataclass(frozen=True)
class TResNetConfig:
    """One TResNet: ``layers`` blocks per stage; ``blocks`` "basic" or "bottleneck" per stage; ``se`` per stage.

    ``width`` is the stem / first-stage width (64 · width factor); stage i has ``width · 2^i``
    planes. ``stem_scale`` is the space-to-depth block size (4: 224 → 56 with 48 channels).
    """

    layers: tuple[int, ...] = (3, 4, 11, 3)
    blocks: tuple[str, ...] = ("basic", "basic", "bottleneck", "bottleneck")
    se: tuple[bool, ...] = (True, True, True, False)
    width: int = 64
    stem_scale: int = 4
    drop_rate: float = 0.0


class BlurPool(nn.Module):
    """Anti-aliased stride-2 downsampling (Zhang 2019) as TResNet uses it: a fixed 3×3 binomial blur, stride 2.

    ``(N, C, H, W) → (N, C, ⌈H/2⌉, ⌈W/2⌉)``: reflect-pad by 1, then depthwise conv with
    ``[1, 2, 1]ᵀ[1, 2, 1] / 16``. No parameters; the filter is a non-persistent buffer. Needs H, W ≥ 2.
    """

    def __init__(self, channels: int) -> None:
        super().__init__()
        taps = torch.tensor([1.0, 2.0, 1.0])
        kernel = (taps[:, None] * taps[None, :]) / 16  # (3, 3), sums to 1
        self.register_buffer("kernel", kernel.expand(channels, 1, 3, 3).clone(), persistent=False)  # (C, 1, 3, 3)

    def forward(self, x: Tensor) -> Tensor:
        x = F.pad(x, (1, 1, 1, 1), mode="reflect")
        return F.conv2d(x, self.kernel.to(x.dtype), stride=2, groups=x.shape[1])


def _conv_bn(in_ch: int, out_ch: int, kernel: int, slope: float | None) -> list[nn.Module]:
    """Conv (no bias) → BN → LeakyReLU(slope), or no activation when ``slope`` is None: TResNet's conv + inplace-ABN."""
    layers: list[nn.Module] = [nn.Conv2d(in_ch, out_ch, kernel, 1, kernel // 2, bias=False), nn.BatchNorm2d(out_ch)]
    return layers + ([nn.LeakyReLU(slope, inplace=True)] if slope is not None else [])


def _block(in_ch: int, planes: int, kind: str, stride: int, se: bool, position: str, op: str | None) -> ResidualBlock:
    """TResNet's basic or bottleneck block; a stride-2 block blurs-and-subsamples after its 3×3 conv.

    Basic: conv3×3 → BN → LReLU → [blur pool] → conv3×3 → BN → [SE, hidden max(C/4, 64)].
    Bottleneck: conv1×1 → BN → LReLU → conv3×3 → BN → LReLU → [blur pool] → [SE on the 3×3 output,
    hidden max(4·planes/8, 64)] → conv1×1 (×4) → BN. Then add the shortcut and ReLU. The 3×3 convs
    (always stride 1) are the spatial mixers that ``op=`` replaces.
    """
    bottleneck = kind == "bottleneck"
    out_ch = planes * (4 if bottleneck else 1)
    slope = 1e-3  # the block activations of the official code (activation_param=1e-3)

    def conv3x3(cin: int, cout: int):
        return lambda: nn.Conv2d(cin, cout, 3, 1, 1, bias=False)

    layers: list[nn.Module] = []
    mix_in = in_ch
    if bottleneck:
        layers += _conv_bn(in_ch, planes, 1, slope)
        mix_in = planes
    layers += [make_mixer(f"{position}.mixer", op, conv3x3(mix_in, planes), mix_in, planes, 3)]
    layers += [nn.BatchNorm2d(planes), nn.LeakyReLU(slope, inplace=True)]
    if stride > 1:
        layers.append(BlurPool(planes))
    if bottleneck:
        if se:
            layers.append(SqueezeExcite(planes, hidden=max(out_ch // 8, 64)))
        layers += _conv_bn(planes, out_ch, 1, None)
    else:
        layers += [make_mixer(f"{position}.mixer2", op, conv3x3(planes, planes), planes, planes, 3)]
        layers.append(nn.BatchNorm2d(planes))
        if se:
            layers.append(SqueezeExcite(planes, hidden=max(out_ch // 4, 64)))
    shortcut: nn.Module | None = None
    if stride > 1 or in_ch != out_ch:
        pool = [nn.AvgPool2d(2, 2, ceil_mode=True, count_include_pad=False)] if stride > 1 else []
        shortcut = nn.Sequential(*pool, *_conv_bn(in_ch, out_ch, 1, None))
    return ResidualBlock(nn.Sequential(*layers), shortcut, nn.ReLU(inplace=True))


class TResNet(ConvNet):
    """TResNet (S65): SpaceToDepth stem, anti-aliased downsampling, basic then bottleneck stages, SE in stages 1–3.

    Stem: space-to-depth with block 4 (``convzoo.layers.space_to_depth``; C → 16·C at 1/4 the side)
    then conv3×3 → BN → LeakyReLU(0.01). Stages of ``layers`` blocks with planes 64, 128, 256, 512
    (basic, basic, bottleneck ×4, bottleneck ×4), strides 1, 2, 2, 2; the stride is taken by a blur
    pool after the 3×3 conv, and the shortcut of a downsampling block is 2×2 average pool → 1×1
    conv → BN. Head: global average pool → FC (2048 → classes).

    Departures from the official code, none of which changes the parameter count: inplace-ABN is
    replaced by ``BatchNorm2d`` followed by ``LeakyReLU`` (ABN holds the same per-channel weight and
    bias); the space-to-depth channel order is ``c·16 + offset`` (pixel-unshuffle order) where the
    official one is ``offset·C + c``, a fixed permutation of the stem conv's input channels.
    """

    def __init__(
        self, cfg: TResNetConfig, *, num_classes: int = 1000, in_chans: int = 3, op: str | None = None
    ) -> None:
        super().__init__()
        if not len(cfg.layers) == len(cfg.blocks) == len(cfg.se) or min(cfg.layers, default=0) < 1:
            raise ValueError(
                f"tresnet: layers {cfg.layers}, blocks {cfg.blocks} and se {cfg.se} must have one entry per stage, "
                "layers ≥ 1"
            )
        unknown = [b for b in cfg.blocks if b not in ("basic", "bottleneck")]
        if unknown:
            raise ValueError(f"tresnet: blocks must be 'basic' or 'bottleneck', got {unknown}")
        self.stem = nn.Sequential(
            SpaceToDepth(cfg.stem_scale), *_conv_bn(in_chans * cfg.stem_scale**2, cfg.width, 3, 1e-2)
        )
        in_ch, reduction = cfg.width, cfg.stem_scale
        stages, self.feature_info = [], []
        for i, (depth, kind, se) in enumerate(zip(cfg.layers, cfg.blocks, cfg.se, strict=True)):
            planes = cfg.width * 2**i
            blocks = []
            for j in range(depth):
                stride = 2 if (i > 0 and j == 0) else 1
                blocks.append(_block(in_ch, planes, kind, stride, se, f"stages.{i}.{j}", op))
                in_ch = planes * (4 if kind == "bottleneck" else 1)
            reduction *= 2 if i > 0 else 1
            stages.append(nn.Sequential(*blocks))
            self.feature_info.append(FeatureInfo(f"stages.{i}", in_ch, reduction))
        self.stages = nn.ModuleList(stages)
        self.head = ClassifierHead(in_ch, num_classes, drop=cfg.drop_rate)
        self._init_weights()

    def _init_weights(self) -> None:
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="leaky_relu")
        # the official code zeroes the last BN of each residual branch: blocks start as identities
        for stage in self.stages:
            for block in stage:
                bns = [m for m in block.body if isinstance(m, nn.BatchNorm2d)]
                nn.init.zeros_(bns[-1].weight)


register_variant(
    "tresnet_m",
    TResNet,
    TResNetConfig(),
    papers=("tresnet",),
    params=31_389_032,
    params_source=(
        "≈31.4M (S65, as catalogued); 31,389,032 counted from the layer definitions of the official "
        "Alibaba-MIIL TResNet-M and timm's tresnet_m (layers 3, 4, 11, 3; 1,000 classes)"
    ),
    summary="TResNet-M (S65): space-to-depth stem, blur-pool downsampling, SE basic/bottleneck stages (3, 4, 11, 3)",
)
