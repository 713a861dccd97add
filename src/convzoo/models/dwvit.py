"""Depth-wise vision Transformer (S98, Zhou, Loy & Dai, "Interpret Vision Transformers as ConvNets with Dynamic
Convolutions"): DeiT-S whose self-attention is a depth-wise dynamic convolution.

The paper reads self-attention as two 1×1 dynamic convolutions: the query-key product is a conv whose kernel
(the keys) is generated from the input, the attention-value product a second one whose kernel is the values;
multi-head attention is then their grouped form, one group per head, all channels of a head sharing one dynamic
kernel. Following depth-wise convolution (groups = channels), the depth-wise Transformer gives every channel
its own group: ``heads = C`` with one query/key channel per head, so channel ``c`` at position ``i`` is
``y_ic = Σ_j K_cij v_jc`` with the per-channel, per-position dynamic kernel ``K_cij = softmax_j(q_ic k_jc)``.

Configuration followed: DeiT-S (dim 384, depth 12, MLP ratio 4, patch 16, 224² input, stochastic depth 0.1) with
every attention made depth-wise; the split into heads changes no parameter, so the count is DeiT-S's
(22,050,664). The paper's own backbone and its efficiency figures could not be consulted; this reading keeps
DeiT's projections, so its FLOPs equal DeiT-S's (its attention maps are C instead of 6 per block).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from convzoo.core.init import drop_path_rates
from convzoo.core.validate import check_int
from convzoo.layers.attention import MultiHeadAttention, TransformerBlock
from convzoo.models.base import ClassifierHead, ConvNet, FeatureInfo
from convzoo.models.registration import register_variant

__all__ = ["DWViTConfig", "DWViT", "DepthwiseDynamicAttention", "TokenViT"]


@dataclass(frozen=True)
class DWViTConfig:
    """One depth-wise ViT: DeiT's ``img_size``, ``patch_size``, ``dim``, ``depth``, ``mlp_ratio``,
    ``drop_path_rate``; ``heads``: the attention groups, ``None`` for depth-wise (one per channel)."""

    img_size: int = 224
    patch_size: int = 16
    dim: int = 384
    depth: int = 12
    heads: int | None = None
    mlp_ratio: float = 4.0
    drop_path_rate: float = 0.1


class DepthwiseDynamicAttention(MultiHeadAttention):
    """Self-attention as a depth-wise dynamic convolution (S98 §5): tokens ``(N, L, C)`` → ``(N, L, C)``.

    :class:`~convzoo.layers.attention.MultiHeadAttention` with ``heads`` groups (default ``C``: one query/key
    channel per head, every value channel its own dynamic kernel). :meth:`dynamic_kernels` returns the kernels
    ``(N, C, L, L)`` (channel c's kernel is its head's softmax map); :meth:`forward_as_convolution` applies them
    channel by channel, ``y_ic = Σ_j K_cij v_jc``, then the output projection — equal to ``forward``.
    """

    def __init__(self, dim: int, heads: int | None = None, *, qkv_bias: bool = True) -> None:
        heads = dim if heads is None else heads
        if dim % heads:
            raise ValueError(f"dwvit: heads must divide the width {dim}, got {heads}")
        super().__init__(dim, heads, qkv_bias=qkv_bias)

    def _qkv(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        width = self.num_heads * self.head_dim
        q, k, v = self.qkv(x).split(width, dim=-1)  # each (N, L, C)
        return self._heads(q), self._heads(k), v

    def dynamic_kernels(self, x: Tensor) -> Tensor:
        """Per-channel dynamic kernels ``(N, C, L, L)``: entry ``[n, c, i, j]`` weighs input j for output i."""
        q, k, _ = self._qkv(x)  # (N, heads, L, d)
        maps = torch.softmax((q * self.scale) @ k.transpose(-2, -1), dim=-1)  # (N, heads, L, L)
        return maps.repeat_interleave(self.head_dim, dim=1)  # (N, C, L, L)

    def forward_as_convolution(self, x: Tensor) -> Tensor:
        _, _, v = self._qkv(x)  # v (N, L, C)
        y = torch.einsum("ncij,njc->nic", self.dynamic_kernels(x), v)  # (N, L, C)
        return self.proj(y)


class _Stage(nn.Module):
    """Class token + position embedding (bicubically resized for other grids), then the blocks:
    patch map ``(N, C, h, w)`` → tokens ``(N, 1 + h·w, C)``."""

    def __init__(self, dim: int, grid: int, blocks: list[nn.Module]) -> None:
        super().__init__()
        self.grid = grid
        self.cls_token = nn.Parameter(torch.zeros(1, 1, dim))
        self.pos_embed = nn.Parameter(torch.zeros(1, 1 + grid * grid, dim))
        self.blocks = nn.ModuleList(blocks)

    def _pos_embed(self, h: int, w: int) -> Tensor:
        if (h, w) == (self.grid, self.grid):
            return self.pos_embed
        grid = self.pos_embed[:, 1:].reshape(1, self.grid, self.grid, -1).permute(0, 3, 1, 2)  # (1, C, g, g)
        grid = F.interpolate(grid, size=(h, w), mode="bicubic", align_corners=False)  # (1, C, h, w)
        return torch.cat([self.pos_embed[:, :1], grid.flatten(2).transpose(1, 2)], 1)  # (1, 1 + h·w, C)

    def forward(self, x: Tensor) -> Tensor:
        n, c, h, w = x.shape
        t = torch.cat([self.cls_token.expand(n, -1, -1), x.flatten(2).transpose(1, 2)], 1)  # (N, 1 + h·w, C)
        t = t + self._pos_embed(h, w)
        for block in self.blocks:
            t = block(t)
        return t


class TokenViT(ConvNet):
    """DeiT skeleton: p×p/p patch conv → class token + position embedding → ``blocks`` → LayerNorm → linear on the
    class token. Input ``(N, 3, H, W)`` → logits; ``forward_features`` returns the normed tokens
    ``(N, 1 + H·W/p², C)``; one feature stage (``features_only``): the image tokens as a map ``(N, C, H/p, W/p)``.
    Truncated-normal (std 0.02) Linear weights, class token and position embedding; zero biases (timm's ViT).
    """

    def __init__(
        self,
        owner: str,
        *,
        img_size: int,
        patch_size: int,
        dim: int,
        blocks: Callable[[], list[nn.Module]],
        num_classes: int,
        in_chans: int,
    ) -> None:
        super().__init__()
        p = check_int(patch_size, "patch_size", owner)
        check_int(dim, "dim", owner)
        if img_size < p or img_size % p:
            raise ValueError(f"{owner}: img_size must be a positive multiple of patch_size {p}, got {img_size}")
        self.stem = nn.Conv2d(in_chans, dim, p, p)
        self.stages = nn.ModuleList([_Stage(dim, img_size // p, blocks())])
        self.feature_info = [FeatureInfo("stages.0", dim, p)]
        self.norm = nn.LayerNorm(dim, eps=1e-6)
        self.head = ClassifierHead(dim, num_classes)
        for m in self.modules():
            if isinstance(m, nn.Linear):
                nn.init.trunc_normal_(m.weight, std=0.02)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
        nn.init.trunc_normal_(self.stages[0].cls_token, std=0.02)
        nn.init.trunc_normal_(self.stages[0].pos_embed, std=0.02)

    def forward_stages(self, x: Tensor) -> list[Tensor]:
        x = self.stem(x)  # (N, C, h, w)
        n, c, h, w = x.shape
        t = self.stages[0](x)
        return [t[:, 1:].transpose(1, 2).reshape(n, c, h, w)]  # (N, C, h, w)

    def forward_features(self, x: Tensor) -> Tensor:
        return self.norm(self.stages[0](self.stem(x)))  # (N, 1 + h·w, C)

    def forward_head(self, x: Tensor, pre_logits: bool = False) -> Tensor:
        return self.head(x[:, 0], pre_logits=pre_logits)  # the class token


class DWViT(TokenViT):
    """Depth-wise vision Transformer (S98, "Interpret Vision Transformers as ConvNets with Dynamic Convolutions"):
    DeiT whose blocks use :class:`DepthwiseDynamicAttention`. ``takes_op=False``: its only convolution is the
    non-overlapping patch embedding (a stem, not a spatial mixer)."""

    def __init__(self, cfg: DWViTConfig, *, num_classes: int = 1000, in_chans: int = 3, op: str | None = None):
        if op is not None:
            raise ValueError("takes no op= (its only conv is the patch embedding)")
        check_int(cfg.depth, "depth", "dwvit")

        def blocks() -> list[nn.Module]:
            rates = drop_path_rates(cfg.drop_path_rate, cfg.depth)
            return [
                TransformerBlock(
                    cfg.dim,
                    mlp_ratio=cfg.mlp_ratio,
                    drop_path=rate,
                    attn=DepthwiseDynamicAttention(cfg.dim, cfg.heads),
                )
                for rate in rates
            ]

        super().__init__(
            "dwvit",
            img_size=cfg.img_size,
            patch_size=cfg.patch_size,
            dim=cfg.dim,
            blocks=blocks,
            num_classes=num_classes,
            in_chans=in_chans,
        )


_DEIT_S = 22_050_664
register_variant(
    "dwvit_small",
    DWViT,
    DWViTConfig(),
    papers=("dynamic-vit-conv",),
    params=_DEIT_S,
    params_source=(
        f"DeiT-S (Touvron et al. Table 1: 22M; timm deit_small_patch16_224: {_DEIT_S:,}); making every attention "
        "depth-wise (heads = channels) adds or removes no parameter"
    ),
    summary="Depth-wise ViT (S98): DeiT-S with self-attention as a per-channel dynamic depth-wise convolution",
    takes_op=False,
    test_cfg={"img_size": 32, "patch_size": 8, "dim": 48, "depth": 2},
)
