"""ResNet (He et al.), its CIFAR form, and the variants that change its block: SE (S14), ECA (S90),
ResNeXt (S68) and ResNeSt (S110)."""

from __future__ import annotations

from dataclasses import dataclass

import torch.nn.functional as F
from torch import Tensor, nn

from convzoo.layers.residual import ResidualBlock
from convzoo.layers.squeeze_excite import SqueezeExcite
from convzoo.models.base import ClassifierHead, ConvNet, FeatureInfo
from convzoo.models.registration import make_mixer, register_variant
from convzoo.ops.attention import EfficientChannelAttention
from convzoo.ops.base import create_op

__all__ = ["ResNetConfig", "ResNet"]


@dataclass(frozen=True)
class ResNetConfig:
    """One ResNet-like network.

    ``block``: "basic" (two 3×3) or "bottleneck" (1×1, 3×3, 1×1 with expansion 4).
    ``stem``: "plain" (7×7/2 + max pool), "deep" (three 3×3, ResNet-D/ResNeSt), or "cifar" (one 3×3, no pool).
    ``shortcut``: "conv" (1×1 projection, option B) or "pad" (parameter-free subsample + zero channels, option A).
    ``attention``: None, "se" or "eca" after the last BN of each block; ``eca_kernel_sizes`` per stage.
    ``radix`` > 0 makes the 3×3 a split-attention conv (ResNeSt) with ``avd`` average-pool downsampling.
    ``zero_init_residual`` starts every residual branch at zero (Goyal et al.), off by default as in torchvision.
    """

    layers: tuple[int, ...] = (2, 2, 2, 2)
    block: str = "basic"
    widths: tuple[int, ...] = (64, 128, 256, 512)
    stem: str = "plain"
    stem_width: int = 64
    shortcut: str = "conv"
    avg_down: bool = False
    groups: int = 1
    width_per_group: int = 64
    attention: str | None = None
    se_reduction: int = 16
    eca_kernel_sizes: tuple[int, ...] | None = None
    radix: int = 0
    avd: bool = False
    drop_rate: float = 0.0
    zero_init_residual: bool = False


def _bn_relu(channels: int) -> list[nn.Module]:
    return [nn.BatchNorm2d(channels), nn.ReLU(inplace=True)]


class _PadShortcut(nn.Module):
    """Option A shortcut: subsample by the stride and zero-pad the new channels evenly on both sides."""

    def __init__(self, in_channels: int, out_channels: int, stride: int) -> None:
        super().__init__()
        self.stride = stride
        self.pad = out_channels - in_channels

    def forward(self, x: Tensor) -> Tensor:
        x = x[:, :, :: self.stride, :: self.stride]
        return F.pad(x, (0, 0, 0, 0, self.pad // 2, self.pad - self.pad // 2))


def _block(
    cfg: ResNetConfig, in_ch: int, width: int, stride: int, stage: int, position: str, op: str | None
) -> ResidualBlock:
    """Basic or bottleneck residual block; the 3×3 is the spatial mixer that ``op=`` replaces."""
    bottleneck = cfg.block == "bottleneck"
    expansion = 4 if bottleneck else 1
    out_ch = width * expansion
    mid = int(width * cfg.width_per_group / 64) * cfg.groups if bottleneck else width
    layers: list[nn.Module] = []
    if bottleneck:
        layers += [nn.Conv2d(in_ch, mid, 1, bias=False), *_bn_relu(mid)]
    mix_in = mid if bottleneck else in_ch
    if cfg.radix > 0:
        # ResNeSt: split-attention conv (conv, BN and ReLU inside), stride moved to an average pool (avd)
        mix_stride = 1 if cfg.avd else stride

        def default() -> nn.Module:
            return create_op(
                "split_attention", mix_in, mid, 3, mix_stride, bias=False, radix=cfg.radix, cardinality=cfg.groups
            )

        layers.append(make_mixer(f"{position}.mixer", op, default, mix_in, mid, 3, mix_stride))
        if op is not None:
            layers += _bn_relu(mid)
        if cfg.avd and stride > 1:
            layers.append(nn.AvgPool2d(3, stride, padding=1))
    else:
        groups = cfg.groups if bottleneck else 1

        def default() -> nn.Module:
            return nn.Conv2d(mix_in, mid, 3, stride, 1, groups=groups, bias=False)

        options = {"groups": groups} if op in ("conv", "group") and groups > 1 else {}
        layers.append(make_mixer(f"{position}.mixer", op, default, mix_in, mid, 3, stride, **options))
        layers += _bn_relu(mid)
    if bottleneck:
        layers += [nn.Conv2d(mid, out_ch, 1, bias=False), nn.BatchNorm2d(out_ch)]
    else:

        def second() -> nn.Module:
            return nn.Conv2d(mid, out_ch, 3, 1, 1, bias=False)

        layers += [make_mixer(f"{position}.mixer2", op, second, mid, out_ch, 3), nn.BatchNorm2d(out_ch)]
    if cfg.attention == "se":
        layers.append(SqueezeExcite(out_ch, reduction=cfg.se_reduction))
    elif cfg.attention == "eca":
        k = cfg.eca_kernel_sizes[stage] if cfg.eca_kernel_sizes else None
        layers.append(EfficientChannelAttention(out_ch, out_ch, k_size=k))
    shortcut: nn.Module | None = None
    if stride != 1 or in_ch != out_ch:
        if cfg.shortcut == "pad":
            shortcut = _PadShortcut(in_ch, out_ch, stride)
        elif cfg.avg_down:
            pool = nn.AvgPool2d(stride, stride, ceil_mode=True, count_include_pad=False) if stride > 1 else None
            convs = [nn.Conv2d(in_ch, out_ch, 1, bias=False), nn.BatchNorm2d(out_ch)]
            shortcut = nn.Sequential(*([pool] if pool else []), *convs)
        else:
            shortcut = nn.Sequential(nn.Conv2d(in_ch, out_ch, 1, stride, bias=False), nn.BatchNorm2d(out_ch))
    return ResidualBlock(nn.Sequential(*layers), shortcut, nn.ReLU(inplace=True))


class ResNet(ConvNet):
    """ResNet family: stem → residual stages → global pool → linear (He et al., 2016)."""

    def __init__(self, cfg: ResNetConfig, *, num_classes: int = 1000, in_chans: int = 3, op: str | None = None):
        super().__init__()
        if cfg.block not in ("basic", "bottleneck"):
            raise ValueError(f"resnet: block must be 'basic' or 'bottleneck', got {cfg.block!r}")
        if len(cfg.layers) != len(cfg.widths):
            raise ValueError(f"resnet: layers {cfg.layers} and widths {cfg.widths} must have the same length")
        if cfg.stem == "plain":
            self.stem = nn.Sequential(
                nn.Conv2d(in_chans, cfg.stem_width, 7, 2, 3, bias=False),
                *_bn_relu(cfg.stem_width),
                nn.MaxPool2d(3, 2, 1),
            )
            reduction = 4
        elif cfg.stem == "deep":
            half = cfg.stem_width
            self.stem = nn.Sequential(
                nn.Conv2d(in_chans, half, 3, 2, 1, bias=False),
                *_bn_relu(half),
                nn.Conv2d(half, half, 3, 1, 1, bias=False),
                *_bn_relu(half),
                nn.Conv2d(half, 2 * half, 3, 1, 1, bias=False),
                *_bn_relu(2 * half),
                nn.MaxPool2d(3, 2, 1),
            )
            reduction = 4
        elif cfg.stem == "cifar":
            self.stem = nn.Sequential(
                nn.Conv2d(in_chans, cfg.stem_width, 3, 1, 1, bias=False), *_bn_relu(cfg.stem_width)
            )
            reduction = 1
        else:
            raise ValueError(f"resnet: stem must be 'plain', 'deep' or 'cifar', got {cfg.stem!r}")
        in_ch = cfg.stem_width * (2 if cfg.stem == "deep" else 1)
        stages, self.feature_info = [], []
        for i, (depth, width) in enumerate(zip(cfg.layers, cfg.widths, strict=True)):
            blocks = []
            for j in range(depth):
                stride = 2 if (j == 0 and i > 0) else 1
                blocks.append(_block(cfg, in_ch, width, stride, i, f"stages.{i}.{j}", op))
                in_ch = width * (4 if cfg.block == "bottleneck" else 1)
            reduction *= 2 if i > 0 else 1
            stages.append(nn.Sequential(*blocks))
            self.feature_info.append(FeatureInfo(f"stages.{i}", in_ch, reduction))
        self.stages = nn.ModuleList(stages)
        self.head = ClassifierHead(in_ch, num_classes, drop=cfg.drop_rate)
        self.zero_init_residual = cfg.zero_init_residual
        self._init_weights()

    def _init_weights(self) -> None:
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
        if not self.zero_init_residual:
            return
        # zero-init the last BN of each residual branch (Goyal et al.): blocks start as identities
        for stage in self.stages:
            for block in stage:
                bns = [m for m in block.body if isinstance(m, nn.BatchNorm2d)]
                nn.init.zeros_(bns[-1].weight)


_TV = "torchvision ImageNet weights"
for _name, _layers, _kind, _params in (
    ("resnet18", (2, 2, 2, 2), "basic", 11_689_512),
    ("resnet34", (3, 4, 6, 3), "basic", 21_797_672),
    ("resnet50", (3, 4, 6, 3), "bottleneck", 25_557_032),
    ("resnet101", (3, 4, 23, 3), "bottleneck", 44_549_160),
    ("resnet152", (3, 8, 36, 3), "bottleneck", 60_192_808),
):
    register_variant(
        _name,
        ResNet,
        ResNetConfig(layers=_layers, block=_kind),
        papers=("resnext",),
        params=_params,
        params_source=f"{_TV} ({_name})",
        summary=f"ResNet-{_name[6:]} (He et al. 2016), the base family of ResNeXt (S68)",
    )

register_variant(
    "resnext50_32x4d",
    ResNet,
    ResNetConfig(layers=(3, 4, 6, 3), block="bottleneck", groups=32, width_per_group=4),
    papers=("resnext",),
    params=25_028_904,
    params_source=f"{_TV} (resnext50_32x4d); S68 Table 1: 25.0M",
    summary="ResNeXt-50 32×4d (S68): grouped 3×3 bottlenecks, cardinality 32",
)

for _name, _depth, _params in (("resnet20", 20, 269_722), ("resnet56", 56, 853_018)):
    _n = (_depth - 2) // 6
    register_variant(
        _name,
        ResNet,
        ResNetConfig(layers=(_n, _n, _n), widths=(16, 32, 64), stem="cifar", stem_width=16, shortcut="pad"),
        papers=("resnext",),
        params=_params,
        params_source=f"He et al. 2016 Table 6 ({_params / 1e6:.2f}M), option A shortcuts, 10 classes",
        input_size=(3, 32, 32),
        num_classes=10,
        summary=f"CIFAR ResNet-{_depth} (He et al. 2016 §4.2): 3 stages of {_n} basic blocks, option A shortcuts",
    )

register_variant(
    "se_resnet50",
    ResNet,
    ResNetConfig(layers=(3, 4, 6, 3), block="bottleneck", attention="se"),
    papers=("senet",),
    params=28_088_024,
    params_source="S14 Table 1 (28.1M); released SE-ResNet-50 weights: 28,088,024",
    summary="SE-ResNet-50 (S14): a squeeze-and-excitation gate (r = 16) on every bottleneck",
)

register_variant(
    "eca_resnet50",
    ResNet,
    ResNetConfig(layers=(3, 4, 6, 3), block="bottleneck", attention="eca", eca_kernel_sizes=(3, 5, 5, 7)),
    papers=("eca-net",),
    params=25_557_112,
    params_source="S90: ResNet-50 + 80 parameters; released eca_resnet50_k3557 (k = 3, 5, 5, 7 per stage)",
    summary="ECA-ResNet-50 (S90): ECA on every bottleneck, kernel sizes 3, 5, 5, 7 as released",
)

register_variant(
    "resnest50d",
    ResNet,
    ResNetConfig(layers=(3, 4, 6, 3), block="bottleneck", stem="deep", stem_width=32, avg_down=True, radix=2, avd=True),
    papers=("resnest",),
    params=27_483_240,
    params_source="official ResNeSt-50 (deep stem, avg-down, avd; S110 Table: 27.5M)",
    summary="ResNeSt-50d (S110): split-attention bottlenecks (radix 2), deep stem, average-pool downsampling",
)
