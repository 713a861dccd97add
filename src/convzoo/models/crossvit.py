"""CrossViT (S100, Chen et al., "CrossViT: Cross-Attention Multi-Scale Vision Transformer for Image Classification").

Two ViT branches see the image in small patches (12×12 of the 240² image) and in large ones (16×16 of it resized
to 224²); after each branch's Transformer blocks, the branches exchange information through cross-attention
fusion (§3.3): each branch's class token, projected to the other branch's width, attends as the only query to
the other branch's patch tokens and is projected back. The two classifiers' logits are averaged.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from convzoo.core.init import drop_path_rates
from convzoo.core.validate import check_int
from convzoo.layers.attention import MultiHeadAttention, TransformerBlock
from convzoo.layers.drop_path import DropPath
from convzoo.models.base import ConvNet, FeatureInfo
from convzoo.models.registration import register_variant

__all__ = ["CrossViTConfig", "CrossViT", "CrossAttentionFusion"]


@dataclass(frozen=True)
class CrossViTConfig:
    """One CrossViT network (paper Table 1 / the official IBM/CrossViT configs).

    ``img_size``: the input side (240); the large-patch branch reads it resized to ``int(img_size · 224/240)``.
    Per branch: ``patch_sizes`` (12, 16), ``dims``, ``heads``, ``mlp_ratios``. ``depths``: per multi-scale
    block, (small-branch blocks, large-branch blocks) — the paper's (N, M) repeated K = 3 times; every block
    ends with one cross-attention fusion per branch (L = 1). ``multi_conv``: the †-models' three-conv patch
    embedding. ``drop_path_rate``: stochastic depth rising linearly over the (max(N, M) per block) positions.
    """

    img_size: int = 240
    patch_sizes: tuple[int, int] = (12, 16)
    dims: tuple[int, int] = (192, 384)
    heads: tuple[int, int] = (6, 6)
    mlp_ratios: tuple[float, float] = (4.0, 4.0)
    depths: tuple[tuple[int, int], ...] = ((1, 4), (1, 4), (1, 4))
    multi_conv: bool = False
    drop_path_rate: float = 0.0
    drop_rate: float = 0.0


class PatchEmbed(nn.Module):
    """Patch embedding ``(N, 3, S, S) → (N, (S/p)², C)``: one p×p/p conv, or for ``multi_conv`` (the † models)
    7×7/4 → ReLU → 3×3/3 → ReLU → 3×3 (p = 12) or 7×7/4 → ReLU → 3×3/2 → ReLU → 3×3/2 (p = 16)."""

    def __init__(self, in_chans: int, dim: int, patch: int, multi_conv: bool) -> None:
        super().__init__()
        if not multi_conv:
            self.proj: nn.Module = nn.Conv2d(in_chans, dim, patch, patch)
        elif patch in (12, 16):
            second = (3, 3, 0) if patch == 12 else (3, 2, 1)
            third = (3, 1, 1) if patch == 12 else (3, 2, 1)
            self.proj = nn.Sequential(
                nn.Conv2d(in_chans, dim // 4, 7, 4, 3),
                nn.ReLU(),
                nn.Conv2d(dim // 4, dim // 2, second[0], second[1], second[2]),
                nn.ReLU(),
                nn.Conv2d(dim // 2, dim, third[0], third[1], third[2]),
            )
        else:
            raise ValueError(f"crossvit: the multi-conv patch embedding exists for patch sizes 12 and 16, got {patch}")

    def forward(self, x: Tensor) -> Tensor:
        return self.proj(x).flatten(2).transpose(1, 2)  # (N, h·w, C)


class CrossAttentionFusion(nn.Module):
    """Cross-attention fusion of one branch (S100 §3.3, Eq. 6–8): ``(N, 1 + L_a, C_a), (N, 1 + L_b, C_b)`` →
    ``(N, 1 + L_a, C_a)``.

    x' = [f(cls_a) ‖ patches_b] with f = LN → GELU → Linear (C_a → C_b); the class token is updated by
    cls' = f(cls_a) + DropPath(CA(LN(x'))), where CA is multi-head attention whose only query is the class token
    and whose keys and values are all of x' (so it costs linear time); then g = LN → GELU → Linear (C_b → C_a)
    brings it back: output [g(cls') ‖ patches_a].
    """

    def __init__(self, dim_a: int, dim_b: int, heads_b: int, drop_path: float) -> None:
        super().__init__()
        self.project = nn.Sequential(nn.LayerNorm(dim_a, eps=1e-6), nn.GELU(), nn.Linear(dim_a, dim_b))
        self.norm = nn.LayerNorm(dim_b, eps=1e-6)
        self.attn = MultiHeadAttention(dim_b, heads_b, qkv_bias=True)
        self.drop_path = DropPath(drop_path)
        self.revert = nn.Sequential(nn.LayerNorm(dim_b, eps=1e-6), nn.GELU(), nn.Linear(dim_b, dim_a))

    def forward(self, a: Tensor, b: Tensor) -> Tensor:
        cls = self.project(a[:, :1])  # (N, 1, C_b)
        x = self.norm(torch.cat([cls, b[:, 1:]], 1))  # (N, 1 + L_b, C_b)
        cls = cls + self.drop_path(self.attn(x[:, :1], context=x))  # (N, 1, C_b): one query, all keys
        return torch.cat([self.revert(cls), a[:, 1:]], 1)  # (N, 1 + L_a, C_a)


class MultiScaleBlock(nn.Module):
    """Both branches' Transformer blocks, then the two cross-attention fusions (each reads the blocks' outputs)."""

    def __init__(self, cfg: CrossViTConfig, depth: tuple[int, int], rates: list[float]) -> None:
        super().__init__()
        self.branches = nn.ModuleList(
            nn.Sequential(
                *(
                    TransformerBlock(cfg.dims[d], cfg.heads[d], mlp_ratio=cfg.mlp_ratios[d], drop_path=rates[j])
                    for j in range(depth[d])
                )
            )
            for d in range(2)
        )
        self.fusion = nn.ModuleList(
            CrossAttentionFusion(cfg.dims[d], cfg.dims[1 - d], cfg.heads[1 - d], rates[-1]) for d in range(2)
        )

    def forward(self, xs: list[Tensor]) -> list[Tensor]:
        ys = [branch(x) for branch, x in zip(self.branches, xs, strict=True)]
        return [self.fusion[0](ys[0], ys[1]), self.fusion[1](ys[1], ys[0])]


class CrossViTHead(nn.Module):
    """Per-branch dropout → linear on the two class tokens ``(N, C_0 + C_1)``; the logits are averaged.

    ``pre_logits`` (or ``num_classes`` 0) returns the concatenated class tokens.
    """

    def __init__(self, dims: tuple[int, int], num_classes: int, drop: float) -> None:
        super().__init__()
        self.dims = dims
        self.drop = nn.Dropout(drop)
        self.fc = nn.ModuleList()
        self.reset(num_classes)

    def reset(self, num_classes: int) -> None:
        self.fc = nn.ModuleList(nn.Linear(d, num_classes) for d in self.dims) if num_classes > 0 else nn.ModuleList()

    def forward(self, x: Tensor, pre_logits: bool = False) -> Tensor:
        x = self.drop(x)
        if pre_logits or len(self.fc) == 0:
            return x
        parts = x.split(list(self.dims), dim=1)  # (N, C_0), (N, C_1)
        return torch.stack([fc(p) for fc, p in zip(self.fc, parts, strict=True)]).mean(0)


class CrossViT(ConvNet):
    """CrossViT (S100): two patch embeddings (+ class token, + learned position embedding) → K multi-scale
    blocks → per-branch LayerNorm → the class tokens' classifiers, averaged.

    Input ``(N, C, S, S)`` with S = ``img_size`` exactly (the position embeddings are sized for it).
    ``forward_stages`` returns, after each multi-scale block, the small-patch branch's patch tokens as a map
    ``(N, C_0, S/12, S/12)``; ``forward_features`` the two normalised class tokens concatenated ``(N, C_0 + C_1)``.
    Follows the official code (and timm's port): LayerNorm eps 1e-6, bicubic resizing for the second branch,
    truncated-normal (std 0.02) linear weights, class tokens and position embeddings, zero biases. It has no
    spatial-mixing convolution (the convs are patch embeddings), so it takes no ``op=``.
    """

    def __init__(self, cfg: CrossViTConfig, *, num_classes: int = 1000, in_chans: int = 3, op: str | None = None):
        super().__init__()
        if op is not None:
            raise ValueError(f"crossvit: takes no op=, got {op!r}")
        check_int(cfg.img_size, "img_size", "crossvit")
        if not cfg.depths:
            raise ValueError("crossvit: depths must name at least one multi-scale block")
        self.img_size = cfg.img_size
        self.sizes = (cfg.img_size, int(cfg.img_size * 224 / 240))
        self.grids = tuple(s // p for s, p in zip(self.sizes, cfg.patch_sizes, strict=True))
        self.stem = nn.Identity()
        self.patch_embed = nn.ModuleList(
            PatchEmbed(in_chans, d, p, cfg.multi_conv) for d, p in zip(cfg.dims, cfg.patch_sizes, strict=True)
        )
        self.cls_token = nn.ParameterList(nn.Parameter(torch.zeros(1, 1, d)) for d in cfg.dims)
        self.pos_embed = nn.ParameterList(
            nn.Parameter(torch.zeros(1, 1 + g * g, d)) for g, d in zip(self.grids, cfg.dims, strict=True)
        )
        positions = [max(depth) for depth in cfg.depths]
        rates = drop_path_rates(cfg.drop_path_rate, sum(positions))
        blocks, start = [], 0
        for depth, count in zip(cfg.depths, positions, strict=True):
            blocks.append(MultiScaleBlock(cfg, depth, rates[start : start + count]))
            start += count
        self.stages = nn.ModuleList(blocks)
        self.feature_info = [FeatureInfo(f"stages.{i}", cfg.dims[0], cfg.patch_sizes[0]) for i in range(len(blocks))]
        self.norm = nn.ModuleList(nn.LayerNorm(d, eps=1e-6) for d in cfg.dims)
        self.head = CrossViTHead(cfg.dims, num_classes, cfg.drop_rate)
        self._init_weights()

    def _init_weights(self) -> None:
        for m in self.modules():
            if isinstance(m, nn.Linear):
                nn.init.trunc_normal_(m.weight, std=0.02)
                nn.init.zeros_(m.bias)
        for p in [*self.cls_token, *self.pos_embed]:
            nn.init.trunc_normal_(p, std=0.02)

    def _tokens(self, x: Tensor) -> list[Tensor]:
        if x.dim() != 4 or x.shape[-2:] != (self.img_size, self.img_size):
            raise ValueError(f"{self.name}: expected (N, C, {self.img_size}, {self.img_size}), got {tuple(x.shape)}")
        xs = []
        for i, embed in enumerate(self.patch_embed):
            size = self.sizes[i]
            image = x if size == self.img_size else F.interpolate(x, size=(size, size), mode="bicubic")
            t = embed(image)  # (N, g², C_i)
            t = torch.cat([self.cls_token[i].expand(t.shape[0], -1, -1), t], 1)  # (N, 1 + g², C_i)
            xs.append(t + self.pos_embed[i])
        return xs

    def forward_stages(self, x: Tensor) -> list[Tensor]:
        xs, maps = self._tokens(x), []
        g = self.grids[0]
        for block in self.stages:
            xs = block(xs)
            n, _, c = xs[0].shape
            maps.append(xs[0][:, 1:].transpose(1, 2).reshape(n, c, g, g))  # (N, C_0, g, g)
        return maps

    def forward_features(self, x: Tensor) -> Tensor:
        xs = self._tokens(x)
        for block in self.stages:
            xs = block(xs)
        return torch.cat([norm(t[:, 0]) for norm, t in zip(self.norm, xs, strict=True)], 1)  # (N, C_0 + C_1)


_TEST = {"img_size": 120, "depths": ((1, 1),)}
register_variant(
    "crossvit_small",
    CrossViT,
    CrossViTConfig(),
    papers=("crossvit",),
    params=26_856_272,
    params_source=(
        "the official IBM/CrossViT crossvit_small_224 config as timm crossvit_small_240: 26,856,272 "
        "(S100 Table 1 rounds CrossViT-S to 26.7M)"
    ),
    input_size=(3, 240, 240),
    summary="CrossViT-S (S100, CrossViT): dims (192, 384), 3 × (1, 4) blocks, cross-attention fusion",
    takes_op=False,
    test_size=120,
    test_cfg=_TEST,
)
register_variant(
    "crossvit_9_dagger",
    CrossViT,
    CrossViTConfig(dims=(128, 256), heads=(4, 4), mlp_ratios=(3.0, 3.0), depths=((1, 3),) * 3, multi_conv=True),
    papers=("crossvit",),
    params=8_800_000,
    params_source="S100 Table 1, CrossViT-9†: 8.8M parameters (timm crossvit_9_dagger_240: 8,776,592)",
    input_size=(3, 240, 240),
    summary="CrossViT-9† (S100, CrossViT): dims (128, 256), 3 × (1, 3) blocks, three-conv patch embedding",
    takes_op=False,
    test_size=120,
    test_cfg=_TEST,
)
