"""MLP-Mixer (S60, Tolstikhin et al., "MLP-Mixer: An all-MLP Architecture for Vision"): Mixer-S/16 and B/16.

The reference non-convolutional mixer: a 16×16/16 patch embedding, then layers that alternate a token-mixing
MLP (across patches, one per channel) and a channel-mixing MLP (across channels, one per patch), each pre-norm
and residual; a final LayerNorm, the mean over patches and a linear classifier.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from torch import Tensor, nn

from convzoo.layers.drop_path import DropPath
from convzoo.layers.mlp import Mlp
from convzoo.layers.norm import LayerNormChannelsFirst
from convzoo.models.base import ClassifierHead, ConvNet, FeatureInfo
from convzoo.models.registration import register_variant

__all__ = ["MlpMixerConfig", "MlpMixer"]


@dataclass(frozen=True)
class MlpMixerConfig:
    """One Mixer-{size}/{patch_size}: ``dim`` = hidden size C, ``depth`` layers, token-MLP width ``token_hidden``
    (D_S), channel-MLP width ``channel_hidden`` (D_C), input side ``img_size`` (fixes the number of patches).

    ``drop_path_rate``: stochastic depth, the same for every layer. ``drop_rate``: dropout before the classifier.
    """

    dim: int = 768
    depth: int = 12
    token_hidden: int = 384
    channel_hidden: int = 3072
    patch_size: int = 16
    img_size: int = 224
    drop_path_rate: float = 0.0
    drop_rate: float = 0.0


class _MixerLayer(nn.Module):
    """U = X + MLP_tokens(LN(X)ᵀ)ᵀ; Y = U + MLP_channels(LN(U)), on tokens X of shape (N, L, C)."""

    def __init__(self, cfg: MlpMixerConfig, num_patches: int) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(cfg.dim, eps=1e-6)
        self.token_mlp = Mlp(num_patches, cfg.token_hidden)
        self.norm2 = nn.LayerNorm(cfg.dim, eps=1e-6)
        self.channel_mlp = Mlp(cfg.dim, cfg.channel_hidden)
        self.drop_path = DropPath(cfg.drop_path_rate)

    def forward(self, x: Tensor) -> Tensor:
        y = self.norm1(x).transpose(1, 2)  # (N, C, L): the token MLP runs along the patches
        y = self.token_mlp(y).transpose(1, 2)  # (N, L, C)
        x = x + self.drop_path(y)
        return x + self.drop_path(self.channel_mlp(self.norm2(x)))


class _MixerStage(nn.Module):
    """The mixer layers on the patch grid: (N, C, h, w) map in, tokens inside, (N, C, h, w) map out."""

    def __init__(self, cfg: MlpMixerConfig, grid: int) -> None:
        super().__init__()
        self.grid = grid
        self.blocks = nn.Sequential(*[_MixerLayer(cfg, grid * grid) for _ in range(cfg.depth)])

    def forward(self, x: Tensor) -> Tensor:
        n, c, h, w = x.shape
        if (h, w) != (self.grid, self.grid):
            raise ValueError(
                f"mlp_mixer: the token-mixing MLP is built for a {self.grid}×{self.grid} patch grid (config img_size), "
                f"got a {h}×{w} grid; resize the input or build the model with the matching img_size"
            )
        tokens = x.flatten(2).transpose(1, 2)  # (N, L, C) with L = h·w patches in row-major order
        tokens = self.blocks(tokens)  # (N, L, C)
        return tokens.transpose(1, 2).reshape(n, c, h, w)  # (N, C, h, w)


def _lecun_normal_(weight: Tensor) -> None:
    """Flax's default kernel init: truncated normal (±2σ) with variance 1 / fan_in after truncation."""
    fan_in = weight[0].numel()
    nn.init.trunc_normal_(weight, std=math.sqrt(1.0 / fan_in) / 0.87962566103423978, a=-2.0, b=2.0)


class MlpMixer(ConvNet):
    """MLP-Mixer (S60, "MLP-Mixer: An all-MLP Architecture for Vision"): patch embedding → mixer layers → head.

    Follows the paper (Figure 1, Table 1) and the official google-research/vision_transformer ``models_mixer.py``:
    pre-norm LayerNorms (eps 1e-6), GELU MLPs, a pre-head LayerNorm (``final_norm``), the mean over patches and a
    zero-initialised classifier; other kernels use Flax's default LeCun-normal init with zero biases. The input
    side must equal ``img_size``: the token-mixing MLP's width is the number of patches. One feature stage: the
    ``(N, C, H/16, W/16)`` map after the last layer (reduction = ``patch_size``).

    ``takes_op=False``: MLP-Mixer has no spatial convolution to replace; space is mixed by the token MLP, a dense
    map over all patches, and the only conv is the non-overlapping patch embedding (a stem, not a mixer).
    """

    def __init__(self, cfg: MlpMixerConfig, *, num_classes: int = 1000, in_chans: int = 3, op: str | None = None):
        super().__init__()
        if op is not None:
            raise ValueError("takes no op= (it has no spatial-mixing convolution to replace)")
        p = cfg.patch_size
        if p < 1 or cfg.img_size < p or cfg.img_size % p:
            raise ValueError(f"mlp_mixer: img_size {cfg.img_size} must be a positive multiple of patch_size {p}")
        grid = cfg.img_size // p
        self.stem = nn.Conv2d(in_chans, cfg.dim, p, stride=p)
        self.stages = nn.ModuleList([_MixerStage(cfg, grid)])
        self.feature_info = [FeatureInfo("stages.0", cfg.dim, p)]
        self.final_norm = LayerNormChannelsFirst(cfg.dim, eps=1e-6)
        self.head = ClassifierHead(cfg.dim, num_classes, drop=cfg.drop_rate)
        self._init_weights()

    def _init_weights(self) -> None:
        for m in self.modules():
            if isinstance(m, nn.Conv2d | nn.Linear):
                _lecun_normal_(m.weight)
                nn.init.zeros_(m.bias)
        if isinstance(self.head.fc, nn.Linear):
            nn.init.zeros_(self.head.fc.weight)


_SIZES = {
    # name: (C, layers, D_S, D_C, S60 Table 1 count, exact count of the official config)
    "s16": (512, 8, 256, 2048, "18M", 18_528_264),
    "b16": (768, 12, 384, 3072, "59M", 59_880_472),
}
for _size, (_dim, _depth, _tokens, _channels, _paper, _params) in _SIZES.items():
    register_variant(
        f"mixer_{_size}_224",
        MlpMixer,
        MlpMixerConfig(dim=_dim, depth=_depth, token_hidden=_tokens, channel_hidden=_channels),
        papers=("mlp-mixer",),
        params=_params,
        params_source=f"S60 Table 1: {_paper}; timm mixer_{_size}_224 / official config: {_params:,}",
        summary=f"MLP-Mixer-{_size[0].upper()}/16 (S60): {_depth} layers, C={_dim}, D_S={_tokens}, D_C={_channels}",
        takes_op=False,
        test_cfg={"img_size": 32, "depth": 2},
    )
