"""DiCo (S63): the diffusion ConvNet whose blocks add compact channel attention to a pointwise/depthwise conv
mixer, in a three-level U-shape.

``DiCo(config)(x, t, y)``: ``(N, C, H, W)`` noisy images, ``(N,)`` timesteps, ``(N,)`` labels (``classes`` is the
null label) → ``(N, C, H, W)`` predicted noise (``(N, 2C, H, W)`` with ``learn_sigma``); ``H`` and ``W`` divisible
by 4. A block (adaLN-modulated, gated like DiT's, with ``c`` the timestep + label embedding of its level)::

    h = conv1×1(x̂),  h = GELU(dwconv3×3(h)),  h = h · σ(conv1×1(avgpool(h))),  x = x + g₁ · conv1×1(h)
    x = x + g₂ · conv1×1(GELU(conv1×1(x̂')))                       # the 1×1 FFN, ``mlp_ratio`` wide

where ``x̂ = LN(x)(1 + scale₁) + shift₁``. The compact channel attention is the ``σ(conv1×1(avgpool))`` gate. The
U-shape runs at widths C, 2C, 4C with ``depth`` = (encoder 1, encoder 2, middle, decoder 2, decoder 1) blocks;
downsampling is a 3×3 conv to half the channels then pixel-unshuffle, upsampling a 3×3 conv to double then
pixel-shuffle; each decoder level concatenates the encoder's output and reduces it with a 1×1 conv (decoder 1
runs at 2C). Each level has its own timestep MLP and label table; decoder 1 and the head use level 2's.

The registered sizes are the official ``dico_models.py`` configs (ImageNet 256², 4 × 32 × 32 latents, 1000
classes, learned variance).
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
    LayerNorm2d,
    TimestepEmbedder,
    drop_labels,
    init_backbone,
    modulate,
    register_diffusion,
)

__all__ = ["DiCo", "DiCoBlock", "DiCoConfig"]


@dataclass(frozen=True)
class DiCoConfig:
    input_size: int = 32
    in_channels: int = 4
    hidden_size: int = 128
    depth: tuple[int, ...] = (5, 4, 4, 4, 4)  # encoder 1, encoder 2, middle, decoder 2, decoder 1
    mlp_ratio: float = 2.0
    classes: int = 1000  # num_classes is create_model's classifier option
    class_dropout: float = 0.1
    learn_sigma: bool = True


class DiCoBlock(nn.Module):
    """``(N, C, H, W), (N, C) → (N, C, H, W)``: the conv mixer with compact channel attention, then the FFN."""

    def __init__(self, width: int, mlp_ratio: float) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(width, width, 1)
        self.conv2 = nn.Conv2d(width, width, 3, padding=1, groups=width)
        self.ca = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Conv2d(width, width, 1), nn.Sigmoid())
        self.conv3 = nn.Conv2d(width, width, 1)
        hidden = int(mlp_ratio * width)
        self.conv4 = nn.Conv2d(width, hidden, 1)
        self.conv5 = nn.Conv2d(hidden, width, 1)
        self.norm1 = LayerNorm2d(width, eps=1e-6, elementwise_affine=False)
        self.norm2 = LayerNorm2d(width, eps=1e-6, elementwise_affine=False)
        self.ada = nn.Sequential(nn.SiLU(), nn.Linear(width, 6 * width))

    def reset_parameters(self) -> None:
        nn.init.zeros_(self.ada[1].weight)
        nn.init.zeros_(self.ada[1].bias)

    def forward(self, x: Tensor, c: Tensor) -> Tensor:
        shift1, scale1, gate1, shift2, scale2, gate2 = self.ada(c).chunk(6, dim=1)  # (N, C) each
        h = F.gelu(self.conv2(self.conv1(modulate(self.norm1(x), shift1, scale1))))
        h = self.conv3(h * self.ca(h))  # compact channel attention: (N, C, 1, 1) gate
        x = x + gate1[:, :, None, None] * h
        h = self.conv5(F.gelu(self.conv4(modulate(self.norm2(x), shift2, scale2))))
        return x + gate2[:, :, None, None] * h


class DiCo(nn.Module):
    """DiCo (S63) U-shaped diffusion ConvNet; see the module docstring."""

    def __init__(self, config: DiCoConfig) -> None:
        super().__init__()
        for field in ("input_size", "in_channels", "hidden_size", "classes"):
            check_int(getattr(config, field), field, "DiCo")
        depth = tuple(config.depth)
        if len(depth) != 5 or any(not isinstance(d, int) or d < 1 for d in depth):
            raise ValueError(f"DiCo: depth must be 5 positive block counts (enc1, enc2, mid, dec2, dec1), got {depth}")
        if not config.mlp_ratio > 0:
            raise ValueError(f"DiCo: mlp_ratio must be > 0, got {config.mlp_ratio}")
        if not 0 <= config.class_dropout < 1:
            raise ValueError(f"DiCo: class_dropout must be in [0, 1), got {config.class_dropout}")
        self.config = config
        c, r = config.hidden_size, config.mlp_ratio
        self.out_channels = config.in_channels * (2 if config.learn_sigma else 1)
        null = config.class_dropout > 0
        self.embed = nn.Conv2d(config.in_channels, c, 3, padding=1)
        self.t_embedders = nn.ModuleList(TimestepEmbedder(c * m) for m in (1, 2, 4))
        self.y_embedders = nn.ModuleList(LabelEmbedder(config.classes, c * m, null) for m in (1, 2, 4))
        self.encoder1 = nn.ModuleList(DiCoBlock(c, r) for _ in range(depth[0]))
        self.down1 = nn.Sequential(nn.Conv2d(c, c // 2, 3, padding=1, bias=False), nn.PixelUnshuffle(2))
        self.encoder2 = nn.ModuleList(DiCoBlock(2 * c, r) for _ in range(depth[1]))
        self.down2 = nn.Sequential(nn.Conv2d(2 * c, c, 3, padding=1, bias=False), nn.PixelUnshuffle(2))
        self.middle = nn.ModuleList(DiCoBlock(4 * c, r) for _ in range(depth[2]))
        self.up2 = nn.Sequential(nn.Conv2d(4 * c, 8 * c, 3, padding=1, bias=False), nn.PixelShuffle(2))
        self.reduce2 = nn.Conv2d(4 * c, 2 * c, 1)
        self.decoder2 = nn.ModuleList(DiCoBlock(2 * c, r) for _ in range(depth[3]))
        self.up1 = nn.Sequential(nn.Conv2d(2 * c, 4 * c, 3, padding=1, bias=False), nn.PixelShuffle(2))
        self.reduce1 = nn.Conv2d(2 * c, 2 * c, 1)
        self.decoder1 = nn.ModuleList(DiCoBlock(2 * c, r) for _ in range(depth[4]))
        self.final = FinalLayer(2 * c, self.out_channels)
        init_backbone(self, self.embed)
        for block in self.modules():
            if isinstance(block, DiCoBlock):
                block.reset_parameters()  # adaLN starts at zero: every block starts as the identity

    def forward(self, x: Tensor, t: Tensor, y: Tensor) -> Tensor:
        if self.training and self.config.class_dropout > 0:
            y = drop_labels(y, self.config.classes, self.config.class_dropout)
        c1, c2, c3 = (te(t) + ye(y) for te, ye in zip(self.t_embedders, self.y_embedders, strict=True))  # (N, C·m)
        x = self.embed(x)  # (N, C, H, W)
        for block in self.encoder1:
            x = block(x, c1)
        skip1 = x
        x = self.down1(x)  # (N, 2C, H/2, W/2)
        for block in self.encoder2:
            x = block(x, c2)
        skip2 = x
        x = self.down2(x)  # (N, 4C, H/4, W/4)
        for block in self.middle:
            x = block(x, c3)
        x = self.reduce2(torch.cat([self.up2(x), skip2], 1))  # (N, 2C, H/2, W/2)
        for block in self.decoder2:
            x = block(x, c2)
        x = self.reduce1(torch.cat([self.up1(x), skip1], 1))  # (N, 2C, H, W)
        for block in self.decoder1:
            x = block(x, c2)
        return self.final(x, c2)  # (N, out_channels, H, W)


_SOURCE = (
    "official shallowdream204/DiCo dico_models.py (NeurIPS 2025) builds this count (4×32×32 latents, 1000 classes, "
    "learn_sigma); this build equals it output for output"
)
_VARIANTS = {  # width, depth, FFN ratio, parameters of the official build
    "dico_s": (128, (5, 4, 4, 4, 4), 2.0, 33_137_672),
    "dico_b": (256, (5, 4, 4, 4, 4), 2.0, 129_992_712),
    "dico_l": (352, (9, 8, 9, 8, 9), 2.0, 463_897_992),
    "dico_xl": (416, (9, 9, 10, 9, 9), 2.0, 701_151_368),
    "dico_h": (416, (14, 12, 10, 12, 14), 4.0, 1_037_408_328),
}
for _name, (_width, _depth, _ratio, _params) in _VARIANTS.items():
    register_diffusion(
        _name,
        DiCo,
        DiCoConfig(hidden_size=_width, depth=_depth, mlp_ratio=_ratio),
        papers=("dico",),
        params=_params,
        params_source=_SOURCE,
        summary=f"S63 DiCo-{_name[5:].upper()}: width {_width}, blocks {'-'.join(map(str, _depth))}, "
        f"compact channel attention, FFN ×{_ratio:g}",
        test_cfg={"hidden_size": 8, "depth": (1, 1, 1, 1, 1)},
    )
