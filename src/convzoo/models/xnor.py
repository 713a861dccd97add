"""XNOR-Net (S8): networks whose inner convolutions are ``binary`` ops, first and last layers kept in float."""

from __future__ import annotations

from dataclasses import dataclass

from torch import nn

from convzoo.layers.residual import ResidualBlock
from convzoo.models.base import ClassifierHead, ConvNet, FeatureInfo
from convzoo.models.registration import make_mixer, register_variant
from convzoo.ops.base import create_op

__all__ = ["XnorConfig", "XnorNet"]


@dataclass(frozen=True)
class XnorConfig:
    """One XNOR-Net.

    ``block``: "residual" (ResNet basic block, each 3×3 conv as BN → BinActiv → BinConv; strided convs
    downsample) or "plain" (one BN → BinActiv → BinConv → 2×2 max pool per stage, S8 Fig. 3).
    ``stem``: "plain" (float 7×7/2 conv + BN + ReLU + 3×3/2 max pool, ResNet's) or "cifar" (float 3×3 conv).
    ``mode``: the binary op's mode, "xnor" (binary inputs and weights) or "bwn" (binary weights only).
    """

    layers: tuple[int, ...] = (2, 2, 2, 2)
    widths: tuple[int, ...] = (64, 128, 256, 512)
    block: str = "residual"
    stem: str = "plain"
    stem_width: int = 64
    mode: str = "xnor"


class _BinaryUnit(nn.Sequential):
    """BN → BinActiv → BinConv (the ``binary`` op binarises its input itself in xnor mode): S8 Fig. 3."""

    def __init__(self, in_ch: int, out_ch: int, stride: int, mode: str, position: str, op: str | None) -> None:
        def default() -> nn.Module:
            return create_op("binary", in_ch, out_ch, 3, stride, bias=False, mode=mode)

        super().__init__(nn.BatchNorm2d(in_ch), make_mixer(position, op, default, in_ch, out_ch, 3, stride))


def _residual_block(
    cfg: XnorConfig, in_ch: int, width: int, stride: int, position: str, op: str | None
) -> ResidualBlock:
    """ResNet basic block with both 3×3 convs binary and no activation after the sum; the 1×1 projection shortcut
    stays float."""
    body = nn.Sequential(
        _BinaryUnit(in_ch, width, stride, cfg.mode, f"{position}.mixer", op),
        _BinaryUnit(width, width, 1, cfg.mode, f"{position}.mixer2", op),
    )
    shortcut = None
    if stride != 1 or in_ch != width:
        shortcut = nn.Sequential(nn.Conv2d(in_ch, width, 1, stride, bias=False), nn.BatchNorm2d(width))
    return ResidualBlock(body, shortcut)


class XnorNet(ConvNet):
    """S8 XNOR-Net: binary convolutions in the paper's block order BN → BinActiv → BinConv → pooling.

    As in S8 §4, the first layer (the stem conv) and the last (the classifier) stay float; every 3×3 conv
    inside the stages is a ``binary`` op (no bias, α per output channel, K map in xnor mode). The residual
    form keeps ResNet-18's conv shapes and its float 1×1 projection shortcuts; since the BN sits before each
    binary conv, the blocks have no ReLU (the sign is the non-linearity) and a final BN + ReLU precedes the
    float classifier. Departure: S8 does not spell out where BN sits relative to the residual addition nor
    whether shortcuts are binarised; we keep them float, as later binary ResNets (Bi-Real, XNOR-Net++) do.
    """

    def __init__(self, cfg: XnorConfig, *, num_classes: int = 1000, in_chans: int = 3, op: str | None = None):
        super().__init__()
        if cfg.block not in ("residual", "plain"):
            raise ValueError(f"xnor: block must be 'residual' or 'plain', got {cfg.block!r}")
        if len(cfg.layers) != len(cfg.widths):
            raise ValueError(f"xnor: layers {cfg.layers} and widths {cfg.widths} must have the same length")
        width = cfg.stem_width
        if cfg.stem == "plain":
            self.stem = nn.Sequential(
                nn.Conv2d(in_chans, width, 7, 2, 3, bias=False),
                nn.BatchNorm2d(width),
                nn.ReLU(inplace=True),
                nn.MaxPool2d(3, 2, 1),
            )
            reduction = 4
        elif cfg.stem == "cifar":
            self.stem = nn.Sequential(
                nn.Conv2d(in_chans, width, 3, 1, 1, bias=False), nn.BatchNorm2d(width), nn.ReLU(inplace=True)
            )
            reduction = 1
        else:
            raise ValueError(f"xnor: stem must be 'plain' or 'cifar', got {cfg.stem!r}")
        in_ch = width
        stages, self.feature_info = [], []
        for i, (depth, width) in enumerate(zip(cfg.layers, cfg.widths, strict=True)):
            blocks: list[nn.Module] = []
            if cfg.block == "residual":
                for j in range(depth):
                    stride = 2 if (j == 0 and i > 0) else 1
                    blocks.append(_residual_block(cfg, in_ch, width, stride, f"stages.{i}.{j}", op))
                    in_ch = width
                reduction *= 2 if i > 0 else 1
            else:
                for j in range(depth):
                    blocks.append(_BinaryUnit(in_ch, width, 1, cfg.mode, f"stages.{i}.{j}", op))
                    in_ch = width
                blocks.append(nn.MaxPool2d(2, 2, ceil_mode=True))
                reduction *= 2
            stages.append(nn.Sequential(*blocks))
            self.feature_info.append(FeatureInfo(f"stages.{i}", in_ch, reduction))
        self.stages = nn.ModuleList(stages)
        self.final_norm = nn.Sequential(nn.BatchNorm2d(in_ch), nn.ReLU(inplace=True))
        self.head = ClassifierHead(in_ch, num_classes)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")


register_variant(
    "xnor_resnet18",
    XnorNet,
    XnorConfig(),
    papers=("xnor-net",),
    params=11_689_512,
    params_source=(
        "S8 binarises ResNet-18's convs at the same shapes (α, K add no parameters): torchvision resnet18 "
        "11,689,512; ours moves BN before each conv and adds a final BN (-896 + 1,024 = 11,689,640)"
    ),
    summary="XNOR-Net ResNet-18 (S8): binary 3×3 convs (BN → BinActiv → BinConv), float first and last layers",
    test_cfg={"layers": (1, 1, 1, 1), "widths": (8, 16, 16, 32), "stem_width": 8},
)

register_variant(
    "xnor_digits",
    XnorNet,
    XnorConfig(layers=(1, 1, 1), widths=(32, 64, 128), block="plain", stem="cifar", stem_width=16),
    papers=("xnor-net",),
    params=99_002,
    params_source=(
        "no published count (convzoo's own model); by hand for 3 input channels, 10 classes: stem 432 + 32, "
        "stages (32 + 4,608) + (64 + 18,432) + (128 + 73,728), final BN 256, head 1,290 = 99,002"
    ),
    input_size=(3, 32, 32),
    num_classes=10,
    summary="small XNOR-Net for 32×32 digits (S8): float 3×3 stem, 3 × (BN → BinActiv → BinConv → max pool)",
)
