"""RDNet (S61, Kim, Heo & Han, "DenseNets Reloaded: Paradigm Shift Beyond ResNets and ViTs"): a DenseNet with
a patchify stem, LayerNorm, ConvNeXt-like feature mixers as dense layers, and wide, shallow dense stages.

Each dense stage concatenates its input with the outputs of ``layers`` feature mixers, each adding
``growth_rate`` channels from the concatenation of everything before it (DenseNet connectivity). A mixer is
depthwise 7×7 → LayerNorm → 1×1 (expansion to ⌊4·C_in / 8⌋·8) → GELU → 1×1 (to the growth rate)
[→ effective SE] → layer scale → drop path. Transitions between dense stages are LayerNorm → conv that keeps
⌊C·θ / 8⌋·8 channels (θ = 0.5), a 2×2/2 conv where the stage downsamples and a 1×1 conv where it does not.
Head: global average pool → LayerNorm → linear. Configuration as in the official code (naver-ai/rdnet, timm).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from convzoo.core.init import drop_path_rates
from convzoo.layers.drop_path import DropPath
from convzoo.layers.layer_scale import optional_layer_scale
from convzoo.layers.norm import LayerNormChannelsFirst
from convzoo.layers.squeeze_excite import EffectiveSqueezeExcite
from convzoo.models.base import ClassifierHead, ConvNet, FeatureInfo
from convzoo.models.registration import make_mixer, register_variant

__all__ = ["RDNetConfig", "RDNet"]


@dataclass(frozen=True)
class RDNetConfig:
    """One RDNet.

    Per dense stage: ``growth_rates``, ``layers`` (feature mixers), ``downsample`` (its transition halves the
    resolution; the first stage has no transition) and ``ese`` (mixers end with effective squeeze-excitation).
    Feature stages (``stages`` of the model) group the dense stages between downsamplings.
    ``stem_width`` channels from a ``patch_size`` patchify conv; ``expansion``: mixer width / input width;
    ``compression`` θ of the transitions; ``kernel_size`` of the depthwise conv; ``ls_init``: layer-scale init
    (0 disables it); ``drop_rate`` before the classifier; ``drop_path_rate``: stochastic depth, linear in depth.
    """

    growth_rates: tuple[int, ...] = (64, 104, 128, 128, 128, 128, 224)
    layers: tuple[int, ...] = (3, 3, 3, 3, 3, 3, 3)
    downsample: tuple[bool, ...] = (False, True, True, False, False, False, True)
    ese: tuple[bool, ...] = (False, False, True, True, True, True, True)
    stem_width: int = 64
    patch_size: int = 4
    expansion: float = 4.0
    compression: float = 0.5
    kernel_size: int = 7
    ls_init: float = 1e-6
    drop_rate: float = 0.0
    drop_path_rate: float = 0.0


def _round8(value: float) -> int:
    return int(value / 8) * 8


class FeatureMixer(nn.Module):
    """RDNet's dense layer: DW k×k (the spatial mixer) → LN → 1×1 → GELU → 1×1 [→ ESE] → layer scale → drop path.

    The branch of :class:`~convzoo.layers.metanext_block.MetaNeXtBlock` without its residual: a dense layer's
    output (``growth_rate`` new channels, fewer than its input) is concatenated to its input, not added, and may
    end in effective squeeze-excitation.
    """

    def __init__(self, cfg: RDNetConfig, in_channels: int, growth_rate: int, ese: bool, drop_path: float, position, op):
        super().__init__()
        hidden = _round8(in_channels * cfg.expansion)
        k = cfg.kernel_size

        def default() -> nn.Module:
            return nn.Conv2d(in_channels, in_channels, k, padding=k // 2, groups=in_channels)

        options = {"groups": in_channels} if op in ("conv", "group") else {}
        layers = [
            make_mixer(f"{position}.mixer", op, default, in_channels, in_channels, k, bias=True, **options),
            LayerNormChannelsFirst(in_channels),
            nn.Conv2d(in_channels, hidden, 1),
            nn.GELU(),
            nn.Conv2d(hidden, growth_rate, 1),
        ]
        if ese:
            layers.append(EffectiveSqueezeExcite(growth_rate))
        self.body = nn.Sequential(*layers)
        self.layer_scale = optional_layer_scale(growth_rate, cfg.ls_init)
        self.drop_path = DropPath(drop_path)

    def forward(self, x: Tensor) -> Tensor:
        return self.drop_path(self.layer_scale(self.body(x)))


class DenseStage(nn.Module):
    """``len(mixers)`` feature mixers with dense connectivity; returns the input and all new features concatenated."""

    def __init__(self, mixers: list[FeatureMixer]) -> None:
        super().__init__()
        self.mixers = nn.ModuleList(mixers)

    def forward(self, x: Tensor) -> Tensor:
        features = [x]
        for mixer in self.mixers:
            features.append(mixer(torch.cat(features, 1)))
        return torch.cat(features, 1)  # (N, C_in + L·k, H, W)


class RDNet(ConvNet):
    """RDNet family (S61): patchify stem → dense stages with transitions → global pool → LayerNorm → linear.

    ``op=`` replaces the depthwise 7×7 of every feature mixer (``groups`` = channels is passed to ``conv`` and
    ``group``, so ``op="conv"`` rebuilds the family's own depthwise conv).
    """

    def __init__(self, cfg: RDNetConfig, *, num_classes: int = 1000, in_chans: int = 3, op: str | None = None):
        super().__init__()
        n = len(cfg.growth_rates)
        if not n or any(len(t) != n for t in (cfg.layers, cfg.downsample, cfg.ese)):
            raise ValueError(
                f"rdnet: growth_rates, layers, downsample and ese need one entry per dense stage, got "
                f"{cfg.growth_rates}, {cfg.layers}, {cfg.downsample}, {cfg.ese}"
            )
        if cfg.downsample[0]:
            raise ValueError("rdnet: the first dense stage has no transition, so downsample[0] must be False")
        p = cfg.patch_size
        self.stem = nn.Sequential(nn.Conv2d(in_chans, cfg.stem_width, p, p), LayerNormChannelsFirst(cfg.stem_width))
        reduction, channels = p, cfg.stem_width
        rates = drop_path_rates(cfg.drop_path_rate, sum(cfg.layers))
        groups: list[list[nn.Module]] = []
        self.feature_info = []
        for i in range(n):
            if i == 0 or cfg.downsample[i]:
                groups.append([])
            part: list[nn.Module] = []
            if i > 0:
                out = _round8(channels * cfg.compression)
                k = 2 if cfg.downsample[i] else 1
                part += [LayerNormChannelsFirst(channels), nn.Conv2d(channels, out, k, k)]
                channels, reduction = out, reduction * k
            position = f"stages.{len(groups) - 1}.{len(groups[-1])}.{len(part)}"
            mixers = []
            for j in range(cfg.layers[i]):
                rate = rates[sum(cfg.layers[:i]) + j]
                mixer = FeatureMixer(cfg, channels, cfg.growth_rates[i], cfg.ese[i], rate, f"{position}.mixers.{j}", op)
                mixers.append(mixer)
                channels += cfg.growth_rates[i]
            groups[-1].append(nn.Sequential(*part, DenseStage(mixers)))
            if i + 1 == n or cfg.downsample[i + 1]:
                self.feature_info.append(FeatureInfo(f"stages.{len(groups) - 1}", channels, reduction))
        self.stages = nn.ModuleList(nn.Sequential(*g) for g in groups)
        self.head = ClassifierHead(channels, num_classes, norm=nn.LayerNorm(channels, eps=1e-6), drop=cfg.drop_rate)
        self._init_weights()

    def _init_weights(self) -> None:
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight)
            elif isinstance(m, nn.Linear):
                nn.init.zeros_(m.bias)


# The count: the 1000-class model of the official configuration. A reported fine-tune of the released
# rdnet_tiny.nv_in1k to 271 classes has 23,104,119 parameters; its 271-class linear (1040·271 + 271) replaced
# by the 1000-class one (1040·1000 + 1000) gives 23,863,008.
register_variant(
    "rdnet_tiny",
    RDNet,
    RDNetConfig(),
    papers=("rdnet",),
    params=23_863_008,
    params_source="S61 Table / rdnet_tiny.nv_in1k model card: 24M; official config (naver-ai/rdnet, timm rdnet_tiny)",
    summary="RDNet-T (S61): 7 dense stages of 3 feature mixers, growth 64-104-128×4-224, patchify stem, LayerNorm",
)
