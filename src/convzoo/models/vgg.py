"""VGG (S53, Simonyan & Zisserman, "Very Deep Convolutional Networks for Large-Scale Image Recognition"):
VGG-11/13/16/19 (configurations A, B, D, E), with and without batch normalisation.

Five stages of 3×3 convs (stride 1, padding 1, ReLU), each closed by a 2×2/2 max pool, then the classifier
FC-4096 → ReLU → dropout → FC-4096 → ReLU → dropout → FC-classes on the 7×7 map (an adaptive average pool
makes any input size give 7×7, as in torchvision). The "_bn" variants put BatchNorm after every conv; they are
not in the paper (which predates BatchNorm) but are the standard torchvision models.
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import Tensor, nn

from convzoo.models.base import ConvNet, FeatureInfo
from convzoo.models.registration import make_mixer, register_variant

__all__ = ["VGGConfig", "VGG", "VGGHead"]


@dataclass(frozen=True)
class VGGConfig:
    """One VGG network.

    ``layers``: 3×3 convs per stage, ``widths``: their channels; each stage ends with a 2×2 max pool.
    ``batch_norm``: BN after every conv. ``head_width``: the two hidden FC layers (4096 in the paper);
    ``pool_size``: side of the map the classifier reads (7); ``drop_rate``: dropout after each hidden FC.
    """

    layers: tuple[int, ...] = (2, 2, 3, 3, 3)
    widths: tuple[int, ...] = (64, 128, 256, 512, 512)
    batch_norm: bool = False
    head_width: int = 4096
    pool_size: int = 7
    drop_rate: float = 0.5


class VGGHead(nn.Module):
    """Adaptive average pool to ``pool_size``² → flatten → (FC → ReLU → dropout) × 2 → FC to the classes."""

    def __init__(self, in_channels: int, num_classes: int, *, width: int, pool_size: int, drop: float) -> None:
        super().__init__()
        self.width = width
        self.pool = nn.AdaptiveAvgPool2d(pool_size)
        self.hidden = nn.Sequential(
            nn.Linear(in_channels * pool_size * pool_size, width),
            nn.ReLU(inplace=True),
            nn.Dropout(drop),
            nn.Linear(width, width),
            nn.ReLU(inplace=True),
            nn.Dropout(drop),
        )
        self.fc: nn.Module = nn.Identity()
        self.reset(num_classes)

    def reset(self, num_classes: int) -> None:
        self.fc = nn.Linear(self.width, num_classes) if num_classes > 0 else nn.Identity()
        if isinstance(self.fc, nn.Linear):
            nn.init.normal_(self.fc.weight, 0, 0.01)
            nn.init.zeros_(self.fc.bias)

    def forward(self, x: Tensor, pre_logits: bool = False) -> Tensor:
        x = self.pool(x).flatten(1)  # (N, C·p·p)
        x = self.hidden(x)
        return x if pre_logits else self.fc(x)


class VGG(ConvNet):
    """VGG family (S53): stages of 3×3 conv-ReLU (or conv-BN-ReLU) closed by max pools → VGGHead.

    There is no stem: stage i is its convs and the max pool that follows them (stride 2^(i+1)). ``op=`` replaces
    every 3×3 conv except the first, which reads the raw image (kept, as stems are elsewhere).
    """

    def __init__(self, cfg: VGGConfig, *, num_classes: int = 1000, in_chans: int = 3, op: str | None = None):
        super().__init__()
        if len(cfg.layers) != len(cfg.widths) or not cfg.layers or min(cfg.layers) < 1:
            raise ValueError(f"vgg: layers {cfg.layers} and widths {cfg.widths} must be equally long and positive")
        self.stem = nn.Identity()
        in_ch, reduction = in_chans, 1
        stages, self.feature_info = [], []
        for i, (depth, width) in enumerate(zip(cfg.layers, cfg.widths, strict=True)):
            layers: list[nn.Module] = []
            for j in range(depth):

                def default(c_in: int = in_ch, c_out: int = width) -> nn.Module:
                    return nn.Conv2d(c_in, c_out, 3, padding=1)

                first = i == 0 and j == 0
                conv = default() if first else make_mixer(f"stages.{i}.{len(layers)}", op, default, in_ch, width, 3)
                layers += (
                    [conv, nn.BatchNorm2d(width), nn.ReLU(inplace=True)]
                    if cfg.batch_norm
                    else [conv, nn.ReLU(inplace=True)]
                )
                in_ch = width
            layers.append(nn.MaxPool2d(2, 2))
            reduction *= 2
            stages.append(nn.Sequential(*layers))
            self.feature_info.append(FeatureInfo(f"stages.{i}", in_ch, reduction))
        self.stages = nn.ModuleList(stages)
        self.head = VGGHead(in_ch, num_classes, width=cfg.head_width, pool_size=cfg.pool_size, drop=cfg.drop_rate)
        self._init_weights()

    def _init_weights(self) -> None:
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.Linear):
                nn.init.normal_(m.weight, 0, 0.01)
                nn.init.zeros_(m.bias)


# S53 Table 1: configurations A (11 weight layers), B (13), D (16), E (19); counts of torchvision's models
_TV = "torchvision ImageNet weights"
for _depth, _layers, _params, _params_bn, _paper in (
    (11, (1, 1, 2, 2, 2), 132_863_336, 132_868_840, 133),
    (13, (2, 2, 2, 2, 2), 133_047_848, 133_053_736, 133),
    (16, (2, 2, 3, 3, 3), 138_357_544, 138_365_992, 138),
    (19, (2, 2, 4, 4, 4), 143_667_240, 143_678_248, 144),
):
    for _bn in (False, True):
        _name = f"vgg{_depth}" + ("_bn" if _bn else "")
        register_variant(
            _name,
            VGG,
            VGGConfig(layers=_layers, batch_norm=_bn),
            papers=("vgg",),
            params=_params_bn if _bn else _params,
            params_source=f"{_TV} ({_name}); S53 Table 2: {_paper}M" + (" without BN" if _bn else ""),
            summary=f"VGG-{_depth}{' + BatchNorm' if _bn else ''} (S53): {sum(_layers)} 3×3 convs in 5 stages, 3 FC",
            test_cfg={"head_width": 64},
        )
