"""SimpleNet (S34, Hasanpour et al., "Let's Keep it Simple, Using Simple Architectures to Outperform Deeper and
More Complex Architectures"): the plain 13-layer CIFAR network of conv-BN-ReLU layers and max pools.

Official configuration (Coderx7/SimpleNet Caffe models, Coderx7/SimpleNet_Pytorch ``simplenet_cifar_5m``):
widths 64, 128, 128, 128 | 128, 128, 256 | 256, 256 | 512, 2048 (1×1), 256 (1×1) | 256, a 2×2/2 max pool after
conv 4, 7, 9 and 12, 3×3 convs with padding 1 elsewhere, global max pooling and one linear layer. Each conv
but the last is followed by dropout (after its max pool where it has one), rate 0.2 in the Caffe models.

Departures, both from the official PyTorch port and towards the paper's Caffe models: the two 1×1 convs take no
padding (the port pads them by 1, growing the map by 2 pixels each), and dropout is element-wise (the port uses
channel dropout). As in the port, every conv, the 1×1s and the last included, is followed by BatchNorm.
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import Tensor, nn

from convzoo.models.base import ConvNet, FeatureInfo
from convzoo.models.registration import make_mixer, register_variant

__all__ = ["SimpleNetConfig", "SimpleNet", "GlobalMaxHead"]


@dataclass(frozen=True)
class SimpleNetConfig:
    """One SimpleNet: ``widths`` and ``kernel_sizes`` of its convs, ``pool_after`` (0-based conv indices followed
    by a 2×2/2 max pool), ``drop_rate`` after every conv but the last, ``bn_momentum`` of its BatchNorms."""

    widths: tuple[int, ...] = (64, 128, 128, 128, 128, 128, 256, 256, 256, 512, 2048, 256, 256)
    kernel_sizes: tuple[int, ...] = (3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 1, 1, 3)
    pool_after: tuple[int, ...] = (3, 6, 8, 11)
    drop_rate: float = 0.2
    bn_momentum: float = 0.05


class GlobalMaxHead(nn.Module):
    """Global max pool → linear (SimpleNet's classifier)."""

    def __init__(self, in_features: int, num_classes: int) -> None:
        super().__init__()
        self.in_features = in_features
        self.fc: nn.Module = nn.Identity()
        self.reset(num_classes)

    def reset(self, num_classes: int) -> None:
        self.fc = nn.Linear(self.in_features, num_classes) if num_classes > 0 else nn.Identity()

    def forward(self, x: Tensor, pre_logits: bool = False) -> Tensor:
        x = x.amax(dim=(2, 3))  # (N, C)
        return x if pre_logits else self.fc(x)


class SimpleNet(ConvNet):
    """SimpleNet family (S34): conv-BN-ReLU layers with max pools → global max pool → linear.

    Stages split after each max pool; convs after the last pool join the last stage (stride 16 on CIFAR).
    ``op=`` replaces every 3×3 conv except the first, which reads the raw image; the 1×1s are not spatial.
    """

    def __init__(self, cfg: SimpleNetConfig, *, num_classes: int = 1000, in_chans: int = 3, op: str | None = None):
        super().__init__()
        n = len(cfg.widths)
        if len(cfg.kernel_sizes) != n or not set(cfg.pool_after) <= set(range(n)):
            raise ValueError(
                f"simplenet: widths {cfg.widths}, kernel_sizes {cfg.kernel_sizes} and pool_after {cfg.pool_after} "
                "must describe the same convs"
            )
        self.stem = nn.Identity()
        groups: list[list[nn.Module]] = [[]]
        self.feature_info = []
        in_ch, reduction = in_chans, 1
        for i, (width, k) in enumerate(zip(cfg.widths, cfg.kernel_sizes, strict=True)):

            def default(c_in: int = in_ch, c_out: int = width, k: int = k) -> nn.Module:
                return nn.Conv2d(c_in, c_out, k, padding=k // 2)

            spatial = k > 1 and i > 0
            position = f"stages.{len(groups) - 1}.{len(groups[-1])}"
            conv = make_mixer(position, op, default, in_ch, width, k, bias=True) if spatial else default()
            groups[-1] += [conv, nn.BatchNorm2d(width, momentum=cfg.bn_momentum), nn.ReLU(inplace=True)]
            in_ch = width
            if i in cfg.pool_after:
                groups[-1].append(nn.MaxPool2d(2, 2))
                reduction *= 2
            if i < n - 1 and cfg.drop_rate > 0:
                groups[-1].append(nn.Dropout(cfg.drop_rate))
            if i in cfg.pool_after and i < max(cfg.pool_after):
                self.feature_info.append(FeatureInfo(f"stages.{len(groups) - 1}", in_ch, reduction))
                groups.append([])
        self.feature_info.append(FeatureInfo(f"stages.{len(groups) - 1}", in_ch, reduction))
        self.stages = nn.ModuleList(nn.Sequential(*g) for g in groups)
        self.head = GlobalMaxHead(in_ch, num_classes)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.xavier_uniform_(m.weight, gain=nn.init.calculate_gain("relu"))


# The paper and the official README give 5.48M. This model, every conv biased and BN-ed as in the official PyTorch
# port, has 5,498,378 parameters (0.34% more); conv and linear weights alone come to 5,484,746.
register_variant(
    "simplenet_cifar_5m",
    SimpleNet,
    SimpleNetConfig(),
    papers=("simplenet",),
    params=5_480_000,
    params_source="S34 CIFAR-10 table: 5.48M; official config Coderx7/SimpleNet_Pytorch simplenet_cifar_5m",
    input_size=(3, 32, 32),
    num_classes=10,
    summary="SimpleNet (S34): 13 plain conv-BN-ReLU layers, four max pools, global max pooling, for CIFAR-10",
    test_size=16,
)
