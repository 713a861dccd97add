"""DiC (S37): the Conv3×3 hourglass diffusion backbone with sparse skips, stage-specific embeddings, mid-block
condition injection and conditional gating.

``DiC(config)(x, t, y)``: ``(N, C, H, W)`` noisy images, ``(N,)`` timesteps, ``(N,)`` labels (``classes`` is
the null label) → ``(N, C, H, W)`` predicted noise (``(N, 2C, H, W)`` with ``learn_sigma``). ``H`` and ``W`` must
be divisible by ``2 ** (levels - 1)``.

The hourglass has ``levels`` resolutions (``depth`` and ``mult_channels`` list the encoder stages, the middle
stage and the decoder stages, ``2·levels − 1`` entries, ``depth`` symmetric). Each stage is a run of blocks::

    h = conv3×3(GELU(GN(x)))
    gate, scale, shift = Linear(SiLU(c))          # condition injected between the two convs
    h = conv3×3(GELU(GN(h) · (1 + scale) + shift))
    out = gate · h + skip(x)                        # conditional gating of the residual branch

Sparse skips: only every ``skip_stride``-th encoder block (counted from the stage's end) sends its output across,
and only every ``skip_stride``-th decoder block (from the stage's start) concatenates one. Stage-specific
embeddings: each resolution has its own timestep MLP and label table at its own width; the decoder reuses the
encoder's at the same resolution, and the output head takes that of the last stage's width. Down/up sampling is
a 3×3 conv with pixel-unshuffle/shuffle. Initialisation follows the official code (DiT's: Xavier, normal(0.02)
embedders, zeroed final layer; the gates are Xavier-initialised, not zeroed).

The registered sizes are the official ``dic_models.py`` configs (ImageNet 256², 4 × 32 × 32 SD-VAE latents, 1000
classes, learned variance); ``create_model("dic_s", in_channels=1, classes=10, learn_sigma=False)`` is the
digits model.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from convzoo.core.validate import check_int
from convzoo.models._diffusion import (
    FinalLayer,
    LabelEmbedder,
    TimestepEmbedder,
    drop_labels,
    init_backbone,
    register_diffusion,
)

__all__ = ["DiC", "DiCConfig"]


@dataclass(frozen=True)
class DiCConfig:
    input_size: int = 32
    in_channels: int = 4
    hidden_size: int = 96
    depth: tuple[int, ...] = (6, 6, 5, 6, 6)  # encoder stages, middle, decoder stages
    mult_channels: tuple[int, ...] = (1, 2, 4, 2, 1)  # width of each stage in units of hidden_size
    classes: int = 1000  # num_classes is create_model's classifier option
    class_dropout: float = 0.1  # label dropout for classifier-free guidance
    learn_sigma: bool = True
    skip_stride: int = 3  # sparse skips: one skip per skip_stride blocks
    num_groups: int = 32
    min_channels_per_group: int = 4


class _GroupNorm(nn.GroupNorm):
    """GroupNorm with ``min(num_groups, C // min_channels)`` groups (DiC's, after EDM's)."""

    def __init__(self, channels: int, num_groups: int, min_channels: int) -> None:
        super().__init__(max(1, min(num_groups, channels // min_channels)), channels, eps=1e-5)


class DiCBlock(nn.Module):
    """The gated Conv3×3 residual block: ``(N, C_in, H, W), (N, C_out) → (N, C_out, H, W)``."""

    def __init__(self, in_channels: int, out_channels: int, groups: int, min_channels: int) -> None:
        super().__init__()
        self.norm0 = _GroupNorm(in_channels, groups, min_channels)
        self.conv0 = nn.Conv2d(in_channels, out_channels, 3, padding=1)
        self.affine = nn.Sequential(nn.SiLU(), nn.Linear(out_channels, 3 * out_channels))
        self.norm1 = _GroupNorm(out_channels, groups, min_channels)
        self.conv1 = nn.Conv2d(out_channels, out_channels, 3, padding=1)
        self.skip = nn.Conv2d(in_channels, out_channels, 1) if in_channels != out_channels else None

    def forward(self, x: Tensor, c: Tensor) -> Tensor:
        h = self.conv0(F.gelu(self.norm0(x)))  # (N, C_out, H, W)
        gate, scale, shift = self.affine(c)[:, :, None, None].chunk(3, dim=1)  # (N, C_out, 1, 1) each
        h = self.conv1(F.gelu(torch.addcmul(shift, self.norm1(h), scale + 1)))
        return gate * h + (x if self.skip is None else self.skip(x))


class _Down(nn.Sequential):
    """``(N, C, H, W) → (N, C_out, H/2, W/2)``: 3×3 conv to ``C_out/4`` then pixel-unshuffle."""

    def __init__(self, channels: int, out_channels: int) -> None:
        super().__init__(nn.Conv2d(channels, out_channels // 4, 3, padding=1, bias=False), nn.PixelUnshuffle(2))


class _Up(nn.Sequential):
    """``(N, C, H, W) → (N, C_out, 2H, 2W)``: 3×3 conv to ``4·C_out`` then pixel-shuffle."""

    def __init__(self, channels: int, out_channels: int) -> None:
        super().__init__(nn.Conv2d(channels, out_channels * 4, 3, padding=1, bias=False), nn.PixelShuffle(2))


def _check(config: DiCConfig) -> int:
    owner = "DiC"
    for field in ("input_size", "in_channels", "hidden_size", "classes", "skip_stride"):
        check_int(getattr(config, field), field, owner)
    depth, mult = tuple(config.depth), tuple(config.mult_channels)
    if len(depth) < 3 or len(depth) % 2 == 0 or len(mult) != len(depth):
        raise ValueError(
            f"DiC: depth and mult_channels must have the same odd length ≥ 3 (encoder, middle, decoder stages), "
            f"got depth={depth!r}, mult_channels={mult!r}"
        )
    levels = (len(depth) + 1) // 2
    if depth[:levels] != depth[-levels:][::-1]:
        raise ValueError(f"DiC: depth must be symmetric (decoder mirrors encoder), got {depth!r}")
    if any(d < 1 for d in depth) or any(m < 1 for m in mult):
        raise ValueError(f"DiC: depth and mult_channels entries must be ≥ 1, got {depth!r}, {mult!r}")
    if mult[-1] not in mult[:levels]:
        raise ValueError(f"DiC: the last stage's width {mult[-1]} must be one of the encoder's {mult[:levels]}")
    if not 0 <= config.class_dropout < 1:
        raise ValueError(f"DiC: class_dropout must be in [0, 1), got {config.class_dropout}")
    return levels


class DiC(nn.Module):
    """DiC (S37) hourglass; see the module docstring."""

    def __init__(self, config: DiCConfig) -> None:
        super().__init__()
        levels = _check(config)
        self.config, self.levels = config, levels
        width, mult, depth = config.hidden_size, tuple(config.mult_channels), tuple(config.depth)
        stride = config.skip_stride
        self.out_channels = config.in_channels * (2 if config.learn_sigma else 1)
        groups, min_ch = config.num_groups, config.min_channels_per_group
        self.embed = nn.Conv2d(config.in_channels, width * mult[0], 3, padding=1)
        null = config.class_dropout > 0
        self.t_embedders = nn.ModuleList(TimestepEmbedder(width * m) for m in mult[:levels])
        self.y_embedders = nn.ModuleList(LabelEmbedder(config.classes, width * m, null) for m in mult[:levels])
        stages = levels - 1
        self.encoder, self.downs = nn.ModuleList(), nn.ModuleList()
        for i in range(stages):
            channels = width * mult[i]
            self.encoder.append(nn.ModuleList(DiCBlock(channels, channels, groups, min_ch) for _ in range(depth[i])))
            self.downs.append(_Down(channels, width * mult[i + 1]))
        channels = width * mult[stages]
        self.middle = nn.ModuleList(DiCBlock(channels, channels, groups, min_ch) for _ in range(depth[stages]))
        self.decoder, self.ups = nn.ModuleList(), nn.ModuleList()
        for j in range(stages):
            level = stages - 1 - j  # the resolution this decoder stage runs at
            out = width * mult[levels + j]
            skip = width * mult[level]
            self.ups.append(_Up(channels, out))
            blocks = [
                DiCBlock(out + skip if b % stride == 0 else out, out, groups, min_ch) for b in range(depth[levels + j])
            ]
            self.decoder.append(nn.ModuleList(blocks))
            channels = out
        # conditions per stage: encoder levels, middle, then the encoder's again in reverse
        self.stage_levels = list(range(levels)) + list(range(stages - 1, -1, -1))
        self.head_level = list(mult[:levels]).index(mult[-1])
        self.output = nn.Conv2d(channels, channels, 3, padding=1)
        self.final = FinalLayer(channels, self.out_channels)
        init_backbone(self, self.embed)

    def forward(self, x: Tensor, t: Tensor, y: Tensor) -> Tensor:
        if self.training and self.config.class_dropout > 0:
            y = drop_labels(y, self.config.classes, self.config.class_dropout)
        conds = [te(t) + ye(y) for te, ye in zip(self.t_embedders, self.y_embedders, strict=True)]  # (N, C·mult)
        stride, skips, stage = self.config.skip_stride, [], 0
        x = self.embed(x)  # (N, C, H, W)
        for blocks, down in zip(self.encoder, self.downs, strict=True):
            c = conds[self.stage_levels[stage]]
            for b, block in enumerate(blocks):
                x = block(x, c)
                if (len(blocks) - 1 - b) % stride == 0:
                    skips.append(x)
            x = down(x)  # (N, C', H/2, W/2)
            stage += 1
        c = conds[self.stage_levels[stage]]
        for block in self.middle:
            x = block(x, c)
        stage += 1
        for blocks, up in zip(self.decoder, self.ups, strict=True):
            c = conds[self.stage_levels[stage]]
            x = up(x)  # (N, C', 2H, 2W)
            for b, block in enumerate(blocks):
                x = block(torch.cat([x, skips.pop()], 1) if b % stride == 0 else x, c)
            stage += 1
        return self.final(self.output(x), conds[self.head_level])  # (N, out_channels, H, W)


_SOURCE = (
    "official YuchuanTian/DiC dic_models.py (CVPR 2025) builds this count (4×32×32 latents, 1000 classes, "
    "learn_sigma); this build equals it output for output"
)
_SUMMARY = "S37 DiC-{}: Conv3×3 hourglass (widths ×1/×2/×4), sparse skips (stride 3), gated conditioning, {} blocks"
register_diffusion(
    "dic_s",
    DiC,
    DiCConfig(hidden_size=96, depth=(6, 6, 5, 6, 6)),
    papers=("dic",),
    params=32_835_752,
    params_source=_SOURCE,
    summary=_SUMMARY.format("S", "6-6-5-6-6"),
    test_cfg={"hidden_size": 8, "depth": (1, 1, 1, 1, 1)},
)
register_diffusion(
    "dic_b",
    DiC,
    DiCConfig(hidden_size=192, depth=(6, 6, 5, 6, 6)),
    papers=("dic",),
    params=129_529_160,
    params_source=_SOURCE,
    summary=_SUMMARY.format("B", "6-6-5-6-6"),
    test_cfg={"hidden_size": 8, "depth": (1, 1, 1, 1, 1)},
)
register_diffusion(
    "dic_xl",
    DiC,
    DiCConfig(hidden_size=384, depth=(7, 7, 8, 7, 7)),
    papers=("dic",),
    params=702_266_120,
    params_source=_SOURCE,
    summary=_SUMMARY.format("XL", "7-7-8-7-7"),
    test_cfg={"hidden_size": 8, "depth": (1, 1, 1, 1, 1)},
)
register_diffusion(
    "dic_h",
    DiC,
    DiCConfig(hidden_size=384, depth=(14, 14, 10, 14, 14)),
    papers=("dic",),
    params=1_034_516_744,
    params_source=_SOURCE,
    summary=_SUMMARY.format("H", "14-14-10-14-14"),
    test_cfg={"hidden_size": 8, "depth": (1, 1, 1, 1, 1)},
)
