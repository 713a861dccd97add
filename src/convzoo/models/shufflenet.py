"""ShuffleNet v1 (S46, Zhang et al., "ShuffleNet: An Extremely Efficient Convolutional Neural Network for Mobile
Devices", CVPR 2018): pointwise group convolutions with channel shuffle."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from convzoo.core.validate import check_int
from convzoo.layers.shuffle import channel_shuffle
from convzoo.models.base import ClassifierHead, ConvNet, FeatureInfo
from convzoo.models.registration import make_mixer, register_variant

__all__ = ["ShuffleNetConfig", "ShuffleNet", "STAGE_WIDTHS"]

# The paper's Table 1 (complexity 1×): output channels of stages 2, 3, 4 for each number of groups g.
STAGE_WIDTHS: dict[int, tuple[int, int, int]] = {
    1: (144, 288, 576),
    2: (200, 400, 800),
    3: (240, 480, 960),
    4: (272, 544, 1088),
    8: (384, 768, 1536),
}


@dataclass(frozen=True)
class ShuffleNetConfig:
    """One ShuffleNet v1: ``groups`` g of the pointwise convolutions, ``widths`` and ``layers`` (units) per stage.

    ``stem_width`` is conv1's 24 channels; every unit's bottleneck has ``out // 4`` channels.
    """

    groups: int = 3
    widths: tuple[int, ...] = STAGE_WIDTHS[3]
    layers: tuple[int, ...] = (4, 8, 4)
    stem_width: int = 24
    drop_rate: float = 0.0


def _bn_relu(channels: int) -> list[nn.Module]:
    return [nn.BatchNorm2d(channels), nn.ReLU(inplace=True)]


class _ShuffleUnit(nn.Module):
    """The ShuffleNet unit (Fig. 2 b/c): 1×1 GConv → BN → ReLU → shuffle → 3×3 DWConv → BN → 1×1 GConv → BN.

    Stride 1: add the identity, then ReLU. Stride 2: the 3×3 DWConv has stride 2, the shortcut is a
    3×3/2 average pool, and the two are concatenated (so the branch produces ``out − in`` channels)
    before the ReLU. ``first_grouped=False`` makes the first pointwise conv dense (stage 2's first
    unit, whose 24 input channels are too few to group). The depthwise conv is what ``op=`` replaces.
    """

    def __init__(
        self, in_ch: int, out_ch: int, stride: int, groups: int, first_grouped: bool, position: str, op: str | None
    ) -> None:
        super().__init__()
        mid = out_ch // 4
        branch = out_ch - in_ch if stride > 1 else out_ch
        first_groups = groups if first_grouped else 1
        for what, channels, g in (
            ("input", in_ch, first_groups),
            ("bottleneck", mid, groups),
            ("branch", branch, groups),
        ):
            if channels < 1 or channels % g:
                raise ValueError(
                    f"shufflenet: {position} has {channels} {what} channels, which must be a positive multiple of "
                    f"groups={g} (widths must grow across a stride-2 unit and be divisible by 4·groups)"
                )
        self.groups = groups
        self.compress = nn.Sequential(nn.Conv2d(in_ch, mid, 1, groups=first_groups, bias=False), *_bn_relu(mid))

        def depthwise() -> nn.Module:
            return nn.Conv2d(mid, mid, 3, stride, 1, groups=mid, bias=False)

        # op="conv"/"group" keep the family's depthwise grouping, as ResNeXt keeps its cardinality
        options = {"groups": mid} if op in ("conv", "group") else {}
        self.mixer = make_mixer(f"{position}.mixer", op, depthwise, mid, mid, 3, stride, **options)
        self.mixer_norm = nn.BatchNorm2d(mid)
        self.expand = nn.Sequential(nn.Conv2d(mid, branch, 1, groups=groups, bias=False), nn.BatchNorm2d(branch))
        self.shortcut = nn.AvgPool2d(3, 2, 1) if stride > 1 else None
        self.act = nn.ReLU(inplace=True)

    def forward(self, x: Tensor) -> Tensor:
        y = self.compress(x)
        if self.groups > 1:
            y = channel_shuffle(y, self.groups)
        y = self.expand(self.mixer_norm(self.mixer(y)))
        if self.shortcut is None:
            return self.act(y + x)
        return self.act(torch.cat([self.shortcut(x), y], dim=1))  # (N, C_in + C_branch, H/2, W/2)


class ShuffleNet(ConvNet):
    """ShuffleNet v1 (S46): 3×3/2 conv (24) → 3×3/2 max pool → three stages of shuffle units → pool → FC.

    Table 1 of the paper: stages of 4, 8, 4 units, the first of each with stride 2; output channels
    per g in :data:`STAGE_WIDTHS`; bottleneck channels a quarter of each unit's output. Channel
    shuffle is :func:`convzoo.layers.shuffle.channel_shuffle` (reshape to (g, n), transpose, flatten).
    """

    def __init__(
        self, cfg: ShuffleNetConfig, *, num_classes: int = 1000, in_chans: int = 3, op: str | None = None
    ) -> None:
        super().__init__()
        check_int(cfg.groups, "groups", "shufflenet")
        if len(cfg.widths) != len(cfg.layers) or min(cfg.layers, default=0) < 1:
            raise ValueError(
                f"shufflenet: widths {cfg.widths} and layers {cfg.layers} must have the same length, layers ≥ 1"
            )
        self.stem = nn.Sequential(
            nn.Conv2d(in_chans, cfg.stem_width, 3, 2, 1, bias=False),
            *_bn_relu(cfg.stem_width),
            nn.MaxPool2d(3, 2, 1),
        )
        in_ch, reduction = cfg.stem_width, 4
        stages, self.feature_info = [], []
        for i, (depth, width) in enumerate(zip(cfg.layers, cfg.widths, strict=True)):
            units = []
            for j in range(depth):
                stride = 2 if j == 0 else 1
                first_grouped = not (i == 0 and j == 0)
                units.append(_ShuffleUnit(in_ch, width, stride, cfg.groups, first_grouped, f"stages.{i}.{j}", op))
                in_ch = width
            reduction *= 2
            stages.append(nn.Sequential(*units))
            self.feature_info.append(FeatureInfo(f"stages.{i}", in_ch, reduction))
        self.stages = nn.ModuleList(stages)
        self.head = ClassifierHead(in_ch, num_classes, drop=cfg.drop_rate)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")


_IMGCLSMOB = "osmr/imgclsmob model table (shufflenet_g{g}_w1, 1,000 classes)"
for _groups, _params in ((1, 1_531_936), (2, 1_733_848), (3, 1_865_728), (4, 1_968_344), (8, 2_434_768)):
    _paper = {3: "; S46 official (megvii) 1.0x g=3: 1.9M", 8: "; S46 official (megvii) 1.0x g=8: 2.4M"}
    register_variant(
        f"shufflenet_g{_groups}",
        ShuffleNet,
        ShuffleNetConfig(groups=_groups, widths=STAGE_WIDTHS[_groups]),
        papers=("shufflenet",),
        params=_params,
        params_source=f"{_IMGCLSMOB.format(g=_groups)}: {_params:,}{_paper.get(_groups, '')}",
        summary=f"ShuffleNet 1× g={_groups} (S46): stages of {STAGE_WIDTHS[_groups]} channels, channel shuffle",
    )
