"""What the diffusion backbones (DiC S37, DiCo S63) share: the ``diffusion`` registration and the conditioning parts.

A ``diffusion`` model maps a noisy image, its timestep and its class, ``(N, C, H, W), (N,), (N,)``, to the
predicted noise ``(N, C, H, W)`` (``(N, 2C, H, W)`` with ``learn_sigma``, the variance channels after the noise
ones). Label ``classes`` (the config field) is the null class of classifier-free guidance: training drops a label
to it with probability ``class_dropout``. Both backbones take the DiT conventions they were published with: a sinusoidal
timestep embedding (256 frequencies) through a 2-layer SiLU MLP, a label table, and an adaptive-norm final layer
whose output conv starts at zero.
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from convzoo.models.registration import register_variant

__all__ = [
    "FinalLayer",
    "LabelEmbedder",
    "LayerNorm2d",
    "TimestepEmbedder",
    "modulate",
    "register_diffusion",
    "timestep_embedding",
]


def register_diffusion(
    name: str,
    family: type[nn.Module],
    config: Any,
    *,
    papers: tuple[str, ...],
    params: int | None,
    params_source: str,
    summary: str,
    test_cfg: dict[str, Any] | None = None,
) -> None:
    """Register ``name`` as ``family(config)`` of kind ``"diffusion"``; keyword overrides replace config fields.

    The registered config is the paper's ImageNet-256 latent model (4 × 32 × 32 latents, 1000 classes, learned
    variance); ``params`` is its published count.
    """
    register_variant(
        name,
        family,
        config,
        papers=papers,
        params=params,
        params_source=params_source,
        input_size=(config.in_channels, config.input_size, config.input_size),
        summary=summary,
        task="diffusion",
        takes_op=False,
        num_classes=config.classes,
        test_size=16,
        test_cfg=test_cfg,
    )


def timestep_embedding(t: Tensor, dim: int, max_period: float = 10_000.0) -> Tensor:
    """Sinusoidal embedding of (possibly fractional) timesteps: ``(N,) → (N, dim)``, cosines then sines."""
    half = dim // 2
    freqs = torch.exp(-math.log(max_period) * torch.arange(half, dtype=torch.float32, device=t.device) / half)
    args = t[:, None].float() * freqs[None]  # (N, half)
    embedding = torch.cat([torch.cos(args), torch.sin(args)], dim=-1)
    if dim % 2:
        embedding = torch.cat([embedding, torch.zeros_like(embedding[:, :1])], dim=-1)
    return embedding


class TimestepEmbedder(nn.Module):
    """``(N,)`` timesteps → ``(N, width)``: 256 sinusoidal frequencies, Linear, SiLU, Linear."""

    def __init__(self, width: int, frequencies: int = 256) -> None:
        super().__init__()
        self.frequencies = frequencies
        self.mlp = nn.Sequential(nn.Linear(frequencies, width), nn.SiLU(), nn.Linear(width, width))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        for linear in (self.mlp[0], self.mlp[2]):
            nn.init.normal_(linear.weight, std=0.02)
            nn.init.zeros_(linear.bias)

    def forward(self, t: Tensor) -> Tensor:
        return self.mlp(timestep_embedding(t, self.frequencies).to(self.mlp[0].weight.dtype))


class LabelEmbedder(nn.Module):
    """``(N,)`` labels → ``(N, width)``; one extra row (index ``num_classes``) is the null label of CFG."""

    def __init__(self, num_classes: int, width: int, with_null: bool) -> None:
        super().__init__()
        self.num_classes = num_classes
        self.table = nn.Embedding(num_classes + int(with_null), width)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        nn.init.normal_(self.table.weight, std=0.02)

    def forward(self, labels: Tensor) -> Tensor:
        return self.table(labels)


def drop_labels(labels: Tensor, num_classes: int, probability: float) -> Tensor:
    """``labels`` with each replaced by the null class ``num_classes`` with ``probability`` (CFG training)."""
    drop = torch.rand(labels.shape[0], device=labels.device) < probability
    return torch.where(drop, torch.full_like(labels, num_classes), labels)


class LayerNorm2d(nn.LayerNorm):
    """LayerNorm over the channels of ``(N, C, H, W)``."""

    def forward(self, x: Tensor) -> Tensor:
        x = x.permute(0, 2, 3, 1)  # (N, H, W, C)
        x = F.layer_norm(x, self.normalized_shape, self.weight, self.bias, self.eps)
        return x.permute(0, 3, 1, 2)  # (N, C, H, W)


def modulate(x: Tensor, shift: Tensor, scale: Tensor) -> Tensor:
    """``x · (1 + scale) + shift`` with ``(N, C)`` shift and scale over ``(N, C, H, W)``."""
    return x * (1 + scale[:, :, None, None]) + shift[:, :, None, None]


class FinalLayer(nn.Module):
    """Adaptive LayerNorm (shift, scale from the condition) then a 3×3 conv to ``out_channels``, all zero-init."""

    def __init__(self, width: int, out_channels: int) -> None:
        super().__init__()
        self.norm = LayerNorm2d(width, eps=1e-6, elementwise_affine=False)
        self.out_proj = nn.Conv2d(width, out_channels, 3, padding=1)
        self.ada = nn.Sequential(nn.SiLU(), nn.Linear(width, 2 * width))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        for module in (self.out_proj, self.ada[1]):
            nn.init.zeros_(module.weight)
            nn.init.zeros_(module.bias)

    def forward(self, x: Tensor, c: Tensor) -> Tensor:
        shift, scale = self.ada(c).chunk(2, dim=1)  # (N, C) each
        return self.out_proj(modulate(self.norm(x), shift, scale))


def init_backbone(model: nn.Module, embed: nn.Conv2d) -> None:
    """The DiT initialisation both backbones use: Xavier-uniform weights and zero biases for every Linear and
    Conv2d, the input conv as a ``(C_out, C_in·k·k)`` linear, then the embedders' normal(0.02) weights and the
    zeroed final layer (each part's own ``reset_parameters``)."""
    for m in model.modules():
        if isinstance(m, (nn.Linear, nn.Conv2d)):
            nn.init.xavier_uniform_(m.weight)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
    nn.init.xavier_uniform_(embed.weight.view(embed.weight.shape[0], -1))
    for m in model.modules():
        if isinstance(m, (TimestepEmbedder, LabelEmbedder, FinalLayer)):
            m.reset_parameters()
