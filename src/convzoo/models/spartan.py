"""SpaRTAN (S32, Pay et al., "SpaRTAN: Spatial Reinforcement Token-based Aggregation Network for Visual Recognition").

A four-stage convolutional network of pre-norm blocks ``x + γ₁·SMixer(GN(x))``, ``x + γ₂·CMixer(GN(x))``
(GroupNorm with one group, layer scales γ initialised to 1e-5), after the official henry-pay/SpaRTAN
``src/model/spartan.py`` and ``src/config/model/spartan.yaml`` (SpaRTAN-T):

- stem: two conv 3×3 stride 2 → BN → GELU (3 → C₁/2 → C₁); between stages a bias-free conv 2×2 stride 2 → BN → SiLU;
- spatial mixer (multi-order dilated aggregation): a 1×1 projection to C/2, MogaNet's feature decomposition
  ``x + γ·(x − mean_HW x)``, then two branches over the same C/2 channels, a 3×3 conv (low order) and two 3×3 convs
  at dilation 2 (higher order, reach 9×9), each ending in BN → GELU → squeeze-excitation (reduction 4); their
  concatenation goes through a 1×1 conv C → C;
- channel mixer (wave-based aggregation): :class:`WaveChannelMixer`;
- head: global average pool → Linear (no norm).

The 3×3 convs are full (one group) in the spatial mixers of the first half of the stages and depthwise in the second
half; the channel mixer's 3×3 conv is depthwise in the first half and has C groups (one per input channel, each of
the expansion's width) in the second, as the official code builds them. Every BatchNorm has eps 1e-6.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from convzoo.core.init import drop_path_rates
from convzoo.core.validate import is_int
from convzoo.layers.drop_path import DropPath
from convzoo.layers.layer_scale import LayerScale
from convzoo.layers.squeeze_excite import SqueezeExcite
from convzoo.layers.stage import Stage
from convzoo.models.base import ClassifierHead, ConvNet, FeatureInfo
from convzoo.models.registration import make_mixer, modules_inside_ops, register_variant

__all__ = ["SpaRTANConfig", "SpaRTAN", "SpatialMixer", "WaveChannelMixer", "rotate_channel_pairs"]


@dataclass(frozen=True)
class SpaRTANConfig:
    """One SpaRTAN network.

    ``depths`` / ``dims``: blocks and channels per stage (every width a multiple of 8; the stem's middle width is
    ``dims[0] // 2``); ``expand_ratios``: the channel mixer's expansion per stage (integers ≥ 2); ``mid_stage``:
    the first stage whose spatial mixer is depthwise (the official ``num_layer // 2``); ``drop_path_rate``:
    stochastic depth rising linearly from 0 (block ``i`` of ``n`` gets ``rate · i / n``, official training 0.1);
    ``head_drop``: dropout before the classifier.
    """

    depths: tuple[int, ...] = (3, 3, 12, 2)
    dims: tuple[int, ...] = (32, 64, 128, 256)
    expand_ratios: tuple[int, ...] = (4, 4, 2, 2)
    mid_stage: int = 2
    drop_path_rate: float = 0.0
    head_drop: float = 0.0


def _fan_out_normal_(weight: Tensor, groups: int = 1) -> None:
    """The official conv initialisation: N(0, 2 / fan_out), ``fan_out = Π k · C_out / groups``."""
    fan_out = math.prod(weight.shape[2:]) * weight.shape[0] // groups
    nn.init.normal_(weight, 0.0, math.sqrt(2.0 / fan_out))


def _conv_bn_act(conv: nn.Module, channels: int, act: nn.Module | None) -> nn.Sequential:
    layers = [conv, nn.BatchNorm2d(channels, eps=1e-6)]
    return nn.Sequential(*layers, act) if act is not None else nn.Sequential(*layers)


class SpatialMixer(nn.Module):
    """SpaRTAN's multi-order spatial mixer on (N, C, H, W), C a multiple of 8, ``M = C / 2``::

        z = PW_in(x)                                  # C → M, bias
        z = z + γ ⊙ (z − mean_HW z)                   # γ init 1e-5 (per channel)
        h = SE(GELU(BN(Conv3(z))))                    # dilation 1
        l = SE(GELU(BN(Conv3,d2(Conv3,d2(z)))))       # dilation 2, twice: reach 9×9
        y = PW_out([h, l])                            # C → C, bias

    The 3×3 convs have no bias and ``groups`` groups (1 or M). ``op=`` replaces each of the three by
    ``create_op(op, M, M, k)`` with ``k`` its reach (3, or 5 for a dilated one); ``op="conv"`` keeps the exact
    3×3 kernel, dilation and groups.
    """

    def __init__(self, channels: int, groups: int, *, position: str = "smixer", op: str | None = None) -> None:
        super().__init__()
        half = channels // 2
        self.proj_in = nn.Conv2d(channels, half, 1)
        self.gamma = nn.Parameter(torch.full((half,), 1e-5))

        def conv(name: str, dilation: int) -> nn.Module:
            def default() -> nn.Module:
                return nn.Conv2d(half, half, 3, padding=dilation, dilation=dilation, groups=groups, bias=False)

            if op == "conv":
                options, kernel = {"groups": groups, "dilation": dilation}, 3
            else:
                options, kernel = {}, 2 * dilation + 1
            return make_mixer(f"{position}.{name}", op, default, half, half, kernel, **options)

        self.h_conv = _conv_bn_act(conv("h_conv.0", 1), half, nn.GELU())
        self.l_conv = nn.Sequential(conv("l_conv.0", 2), _conv_bn_act(conv("l_conv.1.0", 2), half, nn.GELU()))
        self.h_attn = SqueezeExcite(half, reduction=4)
        self.l_attn = SqueezeExcite(half, reduction=4)
        self.proj_out = nn.Conv2d(channels, channels, 1)

    def forward(self, x: Tensor) -> Tensor:
        z = self.proj_in(x)  # (N, M, H, W)
        z = z + self.gamma.view(-1, 1, 1) * (z - z.mean(dim=(2, 3), keepdim=True))
        mixed = torch.cat([self.h_attn(self.h_conv(z)), self.l_attn(self.l_conv(z))], dim=1)  # (N, C, H, W)
        return self.proj_out(mixed)


def rotate_channel_pairs(x: Tensor, wave: Tensor) -> Tensor:
    """Channels ``(2k, 2k + 1)`` of ``x`` read as the complex number ``x₂ₖ + i·x₂ₖ₊₁`` and multiplied by
    ``wave[k, 0] + i·wave[k, 1]`` (a per-pair amplitude and phase).

    ``x`` is ``(N, 2K, *S)``, ``wave`` ``(K, 2)``; returns ``(N, 2K, *S)`` with the product's real part at ``2k``
    and its imaginary part at ``2k + 1``.
    """
    pairs = x.unflatten(1, (-1, 2))  # (N, K, 2, *S)
    re, im = pairs.unbind(dim=2)  # (N, K, *S) each
    shape = (-1, *([1] * (x.dim() - 2)))
    a, b = wave[:, 0].view(shape), wave[:, 1].view(shape)  # (K, 1, ..) each
    return torch.stack([re * a - im * b, re * b + im * a], dim=2).flatten(1, 2)  # (N, 2K, *S)


class WaveChannelMixer(nn.Module):
    """SpaRTAN's wave-based channel aggregation on (N, C, H, W), ``E = r·C`` (r ≥ 2)::

    m = argmax_c x[:, c]                          # per pixel, an index < C
    θ = GELU(PW_θ(x)); w = PW_w(x)                # C → E each, bias
    f = w ⊙ θ + w[m] · θ[m]                       # each pixel's strongest channel pair added to every channel
    f = rotate_channel_pairs(f, wave)             # wave (E / 2, 2), N(0, 1) init
    y = PW_out(SE(GELU(BN(Conv3(f)))))            # Conv3: 3×3, ``groups`` groups, no bias; SE hidden C // 4;
                                                  # PW_out: E → C, bias
    """

    def __init__(self, channels: int, expand_ratio: int, groups: int) -> None:
        super().__init__()
        neck = channels * expand_ratio
        self.theta = nn.Conv2d(channels, neck, 1)
        self.proj = nn.Conv2d(channels, neck, 1)
        self.wave = nn.Parameter(torch.randn(neck // 2, 2))
        self.conv = _conv_bn_act(nn.Conv2d(neck, neck, 3, padding=1, groups=groups, bias=False), neck, nn.GELU())
        self.attn = SqueezeExcite(neck, reduction=4 * expand_ratio)  # hidden (r·C) // (4r) = C // 4
        self.proj_out = nn.Conv2d(neck, channels, 1)

    def forward(self, x: Tensor) -> Tensor:
        strongest = x.argmax(dim=1, keepdim=True)  # (N, 1, H, W)
        theta = F.gelu(self.theta(x))  # (N, E, H, W)
        weight = self.proj(x)  # (N, E, H, W)
        feat = weight * theta + weight.gather(1, strongest) * theta.gather(1, strongest)  # (N, E, H, W)
        feat = rotate_channel_pairs(feat, self.wave)
        return self.proj_out(self.attn(self.conv(feat)))


class _Block(nn.Module):
    """``x + DropPath(γ₁ ⊙ SMixer(GN₁(x)))``, then ``x + DropPath(γ₂ ⊙ CMixer(GN₂(x)))``; γ init 1e-5.

    The pre-norm pair of :class:`~convzoo.layers.metaformer_block.MetaFormerBlock`, but the paper scales the
    residual *branches* (layer scale γ) where MetaFormerBlock scales the shortcuts (res-scale); the mixers keep
    the official names ``smixer`` / ``cmixer``, which the ``op=`` positions name.
    """

    def __init__(self, dim: int, ratio: int, late: bool, drop_path: float, position: str, op: str | None) -> None:
        super().__init__()
        self.norm1 = nn.GroupNorm(1, dim, eps=1e-6)
        self.smixer = SpatialMixer(dim, dim // 2 if late else 1, position=f"{position}.smixer", op=op)
        self.norm2 = nn.GroupNorm(1, dim, eps=1e-6)
        self.cmixer = WaveChannelMixer(dim, ratio, dim if late else dim * ratio)
        self.layer_scale1 = LayerScale(dim, 1e-5)
        self.layer_scale2 = LayerScale(dim, 1e-5)
        self.drop_path = DropPath(drop_path)

    def forward(self, x: Tensor) -> Tensor:
        x = x + self.drop_path(self.layer_scale1(self.smixer(self.norm1(x))))
        return x + self.drop_path(self.layer_scale2(self.cmixer(self.norm2(x))))


class SpaRTAN(ConvNet):
    """SpaRTAN (S32, Spatial Reinforcement Token-based Aggregation Network), after henry-pay/SpaRTAN.

    Initialisation as the official ``_init_weights``: conv weights N(0, 2 / fan_out), linear weights truncated
    normal (std 0.02), biases 0, BatchNorm scales 1. ``op=`` replaces the three 3×3 convs of every spatial mixer
    (see :class:`SpatialMixer`); the channel mixer's grouped 3×3 conv stays.
    """

    def __init__(self, cfg: SpaRTANConfig, *, num_classes: int = 1000, in_chans: int = 3, op: str | None = None):
        super().__init__()
        stages = len(cfg.depths)
        if not stages:
            raise ValueError("spartan: depths must be non-empty, got ()")
        for what in ("dims", "expand_ratios"):
            if len(getattr(cfg, what)) != stages:
                raise ValueError(f"spartan: {what} {getattr(cfg, what)} must have one entry per stage ({stages})")
        if any(not is_int(d) or d < 8 or d % 8 for d in cfg.dims):
            raise ValueError(f"spartan: dims must be positive multiples of 8, got {cfg.dims}")
        if any(not is_int(r) or r < 2 for r in cfg.expand_ratios):
            raise ValueError(f"spartan: expand_ratios must be ints ≥ 2, got {cfg.expand_ratios}")
        dims = cfg.dims
        self.stem = nn.Sequential(
            _conv_bn_act(nn.Conv2d(in_chans, dims[0] // 2, 3, 2, 1, bias=False), dims[0] // 2, nn.GELU()),
            _conv_bn_act(nn.Conv2d(dims[0] // 2, dims[0], 3, 2, 1, bias=False), dims[0], nn.GELU()),
        )
        rates = drop_path_rates(cfg.drop_path_rate, sum(cfg.depths), endpoint=False)
        stage_list, self.feature_info = [], []
        index, reduction = 0, 4
        for i, (depth, dim, ratio) in enumerate(zip(cfg.depths, dims, cfg.expand_ratios, strict=True)):
            downsample = None
            if i > 0:
                downsample = _conv_bn_act(nn.Conv2d(dims[i - 1], dim, 2, 2, bias=False), dim, nn.SiLU())
                reduction *= 2
            late = i >= cfg.mid_stage
            blocks = [_Block(dim, ratio, late, rates[index + j], f"stages.{i}.blocks.{j}", op) for j in range(depth)]
            index += depth
            stage_list.append(Stage(downsample, blocks))
            self.feature_info.append(FeatureInfo(f"stages.{i}", dim, reduction))
        self.stages = nn.ModuleList(stage_list)
        self.head = ClassifierHead(dims[-1], num_classes, drop=cfg.head_drop)
        self._init_weights()

    def _init_weights(self) -> None:
        # replacement operators keep the initialisation they were built with
        inside = modules_inside_ops(self)
        for m in self.modules():
            if id(m) in inside:
                continue
            if isinstance(m, SqueezeExcite):  # its FCs are the official 1×1 convs
                for weight, bias in ((m.fc1_weight, m.fc1_bias), (m.fc2_weight, m.fc2_bias)):
                    _fan_out_normal_(weight)
                    nn.init.zeros_(bias)
            elif isinstance(m, nn.Conv2d):
                _fan_out_normal_(m.weight, m.groups)
            elif isinstance(m, nn.Linear):
                nn.init.trunc_normal_(m.weight, std=0.02)
            if isinstance(m, nn.Conv2d | nn.Linear) and m.bias is not None:
                nn.init.zeros_(m.bias)


register_variant(
    "spartan_t",
    SpaRTAN,
    SpaRTANConfig(),
    papers=("spartan",),
    params=3_820_296,
    params_source="S32 abstract: SpaRTAN-T 3.8M; exact count of the official config "
    "(henry-pay/SpaRTAN src/config/model/spartan.yaml: depths 3-3-12-2, widths 32-64-128-256, expansions 4-4-2-2), "
    "derived by hand in tests/models/test_spartan.py",
    summary="SpaRTAN-T (S32, SpaRTAN: multi-order dilated mixer + wave-based channel aggregation): 3.8M parameters",
    test_cfg={"depths": (1, 1, 1, 1)},
)
