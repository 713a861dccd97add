"""A CIFAR ResNet-20 layout whose every spatial conv keeps its channels, so any operator can stand in it.

In He et al.'s CIFAR ResNet the first conv of a stage also doubles the channels and halves the
size, which ops that keep channels (depthwise mixers, ``inception_dw``, ``dilated_reparam``)
cannot do. Here the blocks only mix space at constant width (two ``C → C`` mixers each), and a
1×1 stride-2 projection with BN changes width and size between stages. It is the backbone of
``convzoo study``, where each registered operator takes the place of ``mixer`` in turn.
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import nn

from convzoo.layers.residual import ResidualBlock
from convzoo.models.base import ClassifierHead, ConvNet, FeatureInfo
from convzoo.models.registration import make_mixer, register_variant

__all__ = ["MixerResNetConfig", "MixerResNet"]


@dataclass(frozen=True)
class MixerResNetConfig:
    """``blocks`` per stage at ``widths``; every mixer is a ``kernel_size`` conv (or ``op``) of stride 1."""

    blocks: tuple[int, ...] = (3, 3, 3)
    widths: tuple[int, ...] = (16, 32, 64)
    kernel_size: int = 3


def _mixer_block(width: int, kernel_size: int, position: str, op: str | None) -> ResidualBlock:
    """``ReLU(BN(mix₂(ReLU(BN(mix₁(x))))) + x)``, with both mixers ``C → C``."""

    def conv() -> nn.Module:
        return nn.Conv2d(width, width, kernel_size, 1, kernel_size // 2, bias=False)

    body = nn.Sequential(
        make_mixer(f"{position}.mixer1", op, conv, width, width, kernel_size),
        nn.BatchNorm2d(width),
        nn.ReLU(inplace=True),
        make_mixer(f"{position}.mixer2", op, conv, width, width, kernel_size),
        nn.BatchNorm2d(width),
    )
    return ResidualBlock(body, act=nn.ReLU(inplace=True))


class MixerResNet(ConvNet):
    """ResNet-20-style CIFAR network with constant-width blocks (convzoo's operator-study backbone)."""

    def __init__(self, cfg: MixerResNetConfig, *, num_classes: int = 10, in_chans: int = 3, op: str | None = None):
        super().__init__()
        if len(cfg.blocks) != len(cfg.widths):
            raise ValueError(f"blocks {cfg.blocks} and widths {cfg.widths} must have the same length")
        first = cfg.widths[0]
        self.stem = nn.Sequential(nn.Conv2d(in_chans, first, 3, 1, 1, bias=False), nn.BatchNorm2d(first), nn.ReLU())
        stages, self.feature_info, in_ch, reduction = [], [], first, 1
        for i, (depth, width) in enumerate(zip(cfg.blocks, cfg.widths, strict=True)):
            layers: list[nn.Module] = []
            if i > 0:
                reduction *= 2
                layers += [nn.Conv2d(in_ch, width, 1, 2, bias=False), nn.BatchNorm2d(width), nn.ReLU()]
            layers += [_mixer_block(width, cfg.kernel_size, f"stages.{i}.{j}", op) for j in range(depth)]
            stages.append(nn.Sequential(*layers))
            self.feature_info.append(FeatureInfo(f"stages.{i}", width, reduction))
            in_ch = width
        self.stages = nn.ModuleList(stages)
        self.head = ClassifierHead(in_ch, num_classes)


# Hand count for 3 input channels and 10 classes: stem 3·16·9 + 32 = 464; stage 1: 6·(16·16·9 + 32) = 14,016;
# projection 16→32: 512 + 64; stage 2: 6·(32·32·9 + 64) = 55,680; projection 32→64: 2,048 + 128;
# stage 3: 6·(64·64·9 + 128) = 221,952; head 64·10 + 10 = 650. Total 295,514.
register_variant(
    "mixer_resnet20",
    MixerResNet,
    MixerResNetConfig(),
    papers=(),
    params=295_514,
    params_source="convzoo's own layout; hand count in models/mixer_resnet.py",
    input_size=(3, 32, 32),
    num_classes=10,
    summary="ResNet-20 layout with constant-width blocks: the backbone of `convzoo study`",
)
