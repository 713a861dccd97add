"""EfficientNet (S33, Tan & Le, "EfficientNet: Rethinking Model Scaling for Convolutional Neural Networks", ICML
2019): B0 and its compound-scaled B1–B7."""

from __future__ import annotations

import math
from dataclasses import dataclass

from torch import Tensor, nn

from convzoo.core.init import drop_path_rates
from convzoo.core.validate import check_number
from convzoo.layers.drop_path import DropPath
from convzoo.layers.squeeze_excite import SqueezeExcite
from convzoo.models.base import ClassifierHead, ConvNet, FeatureInfo
from convzoo.models.registration import make_mixer, register_variant

__all__ = ["EfficientNetConfig", "EfficientNet", "round_filters", "round_repeats", "B0_STAGES"]

# The paper's Table 1 (EfficientNet-B0), stages 2–8: (expand ratio, kernel, stride, output channels, repeats).
B0_STAGES: tuple[tuple[int, int, int, int, int], ...] = (
    (1, 3, 1, 16, 1),
    (6, 3, 2, 24, 2),
    (6, 5, 2, 40, 2),
    (6, 3, 2, 80, 3),
    (6, 5, 1, 112, 3),
    (6, 5, 2, 192, 4),
    (6, 3, 1, 320, 1),
)


def round_filters(channels: int, width_mult: float, divisor: int = 8) -> int:
    """Channels scaled by ``width_mult``, rounded to the nearest multiple of ``divisor`` (official code).

    ``max(divisor, ⌊c·w + divisor/2⌋ rounded down to a multiple of divisor)``, plus one more
    ``divisor`` when that rounding lost more than 10 % of ``c·w``.
    """
    scaled = channels * width_mult
    rounded = max(divisor, int(scaled + divisor / 2) // divisor * divisor)
    return rounded + divisor if rounded < 0.9 * scaled else rounded


def round_repeats(repeats: int, depth_mult: float) -> int:
    """Blocks of a stage scaled by ``depth_mult``, rounded up (official code: ``ceil(d · r)``)."""
    return int(math.ceil(depth_mult * repeats))


@dataclass(frozen=True)
class EfficientNetConfig:
    """One EfficientNet: B0's ``stages`` (see :data:`B0_STAGES`) scaled by ``width_mult`` and ``depth_mult``.

    ``stem_width`` / ``head_width`` are B0's 32 / 1280 before scaling; ``se_ratio`` sizes the SE
    hidden layer from the *block input* channels; ``drop_path_rate`` is the stochastic-depth rate
    of the last block (linearly increasing from 0 over the blocks); ``drop_rate`` the head dropout.
    """

    width_mult: float = 1.0
    depth_mult: float = 1.0
    stages: tuple[tuple[int, int, int, int, int], ...] = B0_STAGES
    stem_width: int = 32
    head_width: int = 1280
    se_ratio: float = 0.25
    divisor: int = 8
    drop_rate: float = 0.2
    drop_path_rate: float = 0.2


def _norm(channels: int) -> nn.BatchNorm2d:
    # the official TF code's BN settings: epsilon 1e-3, decay 0.99 (PyTorch momentum 0.01)
    return nn.BatchNorm2d(channels, eps=1e-3, momentum=0.01)


class _MBConv(nn.Module):
    """Mobile inverted bottleneck with SE: [1×1 expand → BN → swish] → k×k depthwise → BN → swish → SE → 1×1 → BN.

    The identity shortcut (with stochastic depth on the branch) is used when stride is 1 and the
    channels are kept. The depthwise conv is what ``op=`` replaces: the operator is asked for a
    C → C map of the expanded channels with the block's kernel and stride.
    """

    def __init__(
        self,
        in_ch: int,
        out_ch: int,
        expand: int,
        kernel: int,
        stride: int,
        se_ratio: float,
        drop_path: float,
        position: str,
        op: str | None,
    ) -> None:
        super().__init__()
        mid = in_ch * expand
        layers: list[nn.Module] = []
        if expand != 1:
            layers += [nn.Conv2d(in_ch, mid, 1, bias=False), _norm(mid), nn.SiLU(inplace=True)]

        def depthwise() -> nn.Module:
            return nn.Conv2d(mid, mid, kernel, stride, kernel // 2, groups=mid, bias=False)

        # op="conv"/"group" keep the depthwise grouping, as ResNeXt keeps its cardinality
        options = {"groups": mid} if op in ("conv", "group") else {}
        layers += [make_mixer(f"{position}.mixer", op, depthwise, mid, mid, kernel, stride, **options)]
        layers += [_norm(mid), nn.SiLU(inplace=True)]
        if se_ratio > 0:
            # unlike S14, the hidden width comes from the block *input* channels and the activation is swish
            layers.append(SqueezeExcite(mid, hidden=max(1, int(in_ch * se_ratio)), act=nn.SiLU))
        layers += [nn.Conv2d(mid, out_ch, 1, bias=False), _norm(out_ch)]
        self.body = nn.Sequential(*layers)
        self.residual = stride == 1 and in_ch == out_ch
        self.drop_path = DropPath(drop_path) if self.residual and drop_path > 0 else nn.Identity()

    def forward(self, x: Tensor) -> Tensor:
        y = self.body(x)
        return x + self.drop_path(y) if self.residual else y


class _ConvHead(nn.Module):
    """EfficientNet's head: 1×1 conv to the head width → BN → swish, then pool → dropout → linear."""

    def __init__(self, in_ch: int, width: int, num_classes: int, drop: float) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_ch, width, 1, bias=False)
        self.norm = _norm(width)
        self.act = nn.SiLU(inplace=True)
        self.classifier = ClassifierHead(width, num_classes, drop=drop)

    def reset(self, num_classes: int) -> None:
        self.classifier.reset(num_classes)

    def forward(self, x: Tensor, pre_logits: bool = False) -> Tensor:
        return self.classifier(self.act(self.norm(self.conv(x))), pre_logits=pre_logits)


class EfficientNet(ConvNet):
    """EfficientNet (S33): B0's MBConv stages with compound scaling of width and depth.

    Stem 3×3/2 conv → BN → swish; seven stages of MBConv blocks (paper Table 1, stages 2–8, one
    ``stages`` entry each, so strides 2, 4, 8, 16, 16, 32, 32); head 1×1 conv → BN → swish → pool →
    dropout → FC. A variant scales every width with :func:`round_filters` and every stage's block
    count with :func:`round_repeats` (the official code's rules); its resolution is the registered
    ``input_size``. The head's 1×1 conv lives in ``head`` (``features_only`` returns the stages).
    Symmetric padding replaces TF's "SAME" (same output sizes; asymmetric only for stride 2).
    """

    def __init__(
        self, cfg: EfficientNetConfig, *, num_classes: int = 1000, in_chans: int = 3, op: str | None = None
    ) -> None:
        super().__init__()
        check_number(cfg.width_mult, "width_mult", "efficientnet")
        check_number(cfg.depth_mult, "depth_mult", "efficientnet")
        check_number(
            cfg.drop_path_rate, "drop_path_rate", "efficientnet", low=0.0, low_open=False, high_open=True, high=1.0
        )
        check_number(cfg.se_ratio, "se_ratio", "efficientnet", low=0.0, low_open=False, high=1.0)
        stem_width = round_filters(cfg.stem_width, cfg.width_mult, cfg.divisor)
        self.stem = nn.Sequential(
            nn.Conv2d(in_chans, stem_width, 3, 2, 1, bias=False), _norm(stem_width), nn.SiLU(inplace=True)
        )
        plan = [
            (expand, kernel, stride, round_filters(out, cfg.width_mult, cfg.divisor), round_repeats(n, cfg.depth_mult))
            for expand, kernel, stride, out, n in cfg.stages
        ]
        rates = drop_path_rates(cfg.drop_path_rate, sum(p[-1] for p in plan), endpoint=False)
        in_ch, reduction, index = stem_width, 2, 0
        stages, self.feature_info = [], []
        for i, (expand, kernel, stride, out_ch, repeats) in enumerate(plan):
            blocks = []
            for j in range(repeats):
                s = stride if j == 0 else 1
                position = f"stages.{i}.{j}"
                blocks.append(_MBConv(in_ch, out_ch, expand, kernel, s, cfg.se_ratio, rates[index], position, op))
                in_ch, index = out_ch, index + 1
            reduction *= stride
            stages.append(nn.Sequential(*blocks))
            self.feature_info.append(FeatureInfo(f"stages.{i}", out_ch, reduction))
        self.stages = nn.ModuleList(stages)
        head_width = round_filters(cfg.head_width, cfg.width_mult, cfg.divisor)
        self.head = _ConvHead(in_ch, head_width, num_classes, cfg.drop_rate)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out")
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, SqueezeExcite):  # the official SE's FCs are 1×1 convs, initialised like the rest
                for weight, bias in ((m.fc1_weight, m.fc1_bias), (m.fc2_weight, m.fc2_bias)):
                    nn.init.kaiming_normal_(weight, mode="fan_out")
                    nn.init.zeros_(bias)


_TV = "torchvision efficientnet_{v} weights (num_params)"
# (variant, width, depth, resolution, dropout, torchvision's published count); S33 §4 and the official code
for _v, _width, _depth, _res, _drop, _params in (
    ("b0", 1.0, 1.0, 224, 0.2, 5_288_548),
    ("b1", 1.0, 1.1, 240, 0.2, 7_794_184),
    ("b2", 1.1, 1.2, 260, 0.3, 9_109_994),
    ("b3", 1.2, 1.4, 300, 0.3, 12_233_232),
    ("b4", 1.4, 1.8, 380, 0.4, 19_341_616),
    ("b5", 1.6, 2.2, 456, 0.4, 30_389_784),
    ("b6", 1.8, 2.6, 528, 0.5, 43_040_704),
    ("b7", 2.0, 3.1, 600, 0.5, 66_347_960),
):
    register_variant(
        f"efficientnet_{_v}",
        EfficientNet,
        EfficientNetConfig(width_mult=_width, depth_mult=_depth, drop_rate=_drop),
        papers=("efficientnet",),
        params=_params,
        params_source=f"{_TV.format(v=_v)}: {_params:,}; also osmr/imgclsmob efficientnet_{_v}b",
        input_size=(3, _res, _res),
        summary=f"EfficientNet-{_v.upper()} (S33): B0 scaled to width ×{_width}, depth ×{_depth}, {_res}px",
        # B4–B7 at full depth take over a second to build and run; the contract test keeps their widths
        test_cfg={"depth_mult": 1.0} if _depth >= 1.8 else None,
    )
