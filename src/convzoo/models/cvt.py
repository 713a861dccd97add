"""CvT (S114, Wu et al., "CvT: Introducing Convolutions to Vision Transformers"): CvT-13.

Three stages, each a convolutional token embedding (an overlapping strided conv on the token map, then
LayerNorm) followed by Transformer blocks whose attention takes its queries, keys and values from a
convolutional projection (depthwise k×k conv → BatchNorm → linear; keys and values at stride 2). No
position embedding; a class token joins in the last stage and is what the classifier reads.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from convzoo.core.init import drop_path_rates
from convzoo.core.validate import check_int
from convzoo.layers.drop_path import DropPath
from convzoo.layers.mlp import Mlp
from convzoo.models.base import ClassifierHead, ConvNet, FeatureInfo
from convzoo.models.registration import make_mixer, modules_inside_ops, register_variant

__all__ = ["CvTConfig", "CvT", "ConvProjectionAttention"]


@dataclass(frozen=True)
class CvTConfig:
    """One CvT network (paper Table 2; the official ``cvt-13-224x224`` config).

    Per stage: ``dims`` (embedding width), ``depths`` (blocks), ``heads``; the token embedding's ``patch_sizes``,
    ``patch_strides``, ``patch_paddings``. ``kernel_size``: the depthwise projection conv (3), with keys and
    values at stride ``kv_stride`` (2) and queries at stride 1. ``mlp_ratio``: 4. ``drop_path_rate``: stochastic
    depth of the last stage, rising linearly over its blocks (0.1 for CvT-13, as the official config; the first
    two stages have none). ``qkv_bias``: the linear projections' biases (True).
    """

    dims: tuple[int, ...] = (64, 192, 384)
    depths: tuple[int, ...] = (1, 2, 10)
    heads: tuple[int, ...] = (1, 3, 6)
    patch_sizes: tuple[int, ...] = (7, 3, 3)
    patch_strides: tuple[int, ...] = (4, 2, 2)
    patch_paddings: tuple[int, ...] = (2, 1, 1)
    kernel_size: int = 3
    kv_stride: int = 2
    mlp_ratio: float = 4.0
    drop_path_rate: float = 0.1
    qkv_bias: bool = True


class ConvProjectionAttention(nn.Module):
    """Convolutional projection attention (S114 §3.2): tokens ``(N, T + H·W, C)`` with their map size → same shape.

    The H·W patch tokens, as a map, go through three depthwise k×k convs (no bias) + BatchNorm — stride 1 for
    the queries, ``kv_stride`` for the keys and values (the paper's squeezed projection) — then three linear
    layers ``C → C``; the ``T`` class tokens (0 or 1) skip the convs and join each of q, k and v in front.
    Multi-head softmax attention follows, then a linear output projection. The logits are scaled by
    ``C^-½`` (the whole width, as the official code does, not the head width).
    """

    def __init__(
        self, dim: int, heads: int, *, kernel_size: int, kv_stride: int, qkv_bias: bool, op: str | None, position: str
    ) -> None:
        super().__init__()
        if dim % heads:
            raise ValueError(f"cvt: heads must divide the width {dim}, got {heads}")
        self.dim, self.heads = dim, heads
        self.scale = dim**-0.5

        def projection(stride: int, name: str) -> nn.Sequential:
            def default() -> nn.Module:
                return nn.Conv2d(dim, dim, kernel_size, stride, kernel_size // 2, groups=dim, bias=False)

            conv = make_mixer(f"{position}.{name}", op, default, dim, dim, kernel_size, stride)
            return nn.Sequential(conv, nn.BatchNorm2d(dim))

        self.conv_q = projection(1, "conv_q")
        self.conv_k = projection(kv_stride, "conv_k")
        self.conv_v = projection(kv_stride, "conv_v")
        self.proj_q = nn.Linear(dim, dim, bias=qkv_bias)
        self.proj_k = nn.Linear(dim, dim, bias=qkv_bias)
        self.proj_v = nn.Linear(dim, dim, bias=qkv_bias)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: Tensor, size: tuple[int, int], num_cls: int) -> Tensor:
        n, length, c = x.shape
        h, w = size
        cls, patches = x[:, :num_cls], x[:, num_cls:]
        grid = patches.transpose(1, 2).reshape(n, c, h, w)  # (N, C, H, W)

        def tokens(conv: nn.Module, proj: nn.Linear) -> Tensor:
            t = conv(grid).flatten(2).transpose(1, 2)  # (N, h'·w', C)
            t = proj(torch.cat([cls, t], 1))  # (N, T + h'·w', C)
            return t.reshape(n, t.shape[1], self.heads, c // self.heads).transpose(1, 2)  # (N, heads, L', d)

        q, k, v = tokens(self.conv_q, self.proj_q), tokens(self.conv_k, self.proj_k), tokens(self.conv_v, self.proj_v)
        attn = torch.softmax((q @ k.transpose(-2, -1)) * self.scale, dim=-1)  # (N, heads, L, L')
        y = (attn @ v).transpose(1, 2).reshape(n, length, c)  # (N, L, C)
        return self.proj(y)


class CvTBlock(nn.Module):
    """Pre-norm Transformer block with :class:`ConvProjectionAttention`: ``(N, L, C)`` and the map size → same shape.

    ``x + DropPath(attn(LN(x)))``, then ``x + DropPath(MLP(LN(x)))`` (GELU MLP, LayerNorm eps 1e-5). The
    shared :class:`convzoo.layers.attention.TransformerBlock` is not used because this attention needs the
    map size and class-token count with the tokens.
    """

    def __init__(self, dim: int, heads: int, cfg: CvTConfig, drop_path: float, op: str | None, position: str):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=1e-5)
        self.attn = ConvProjectionAttention(
            dim,
            heads,
            kernel_size=cfg.kernel_size,
            kv_stride=cfg.kv_stride,
            qkv_bias=cfg.qkv_bias,
            op=op,
            position=f"{position}.attn",
        )
        self.norm2 = nn.LayerNorm(dim, eps=1e-5)
        self.mlp = Mlp(dim, int(dim * cfg.mlp_ratio))
        self.drop_path = DropPath(drop_path)

    def forward(self, x: Tensor, size: tuple[int, int], num_cls: int) -> Tensor:
        x = x + self.drop_path(self.attn(self.norm1(x), size, num_cls))
        return x + self.drop_path(self.mlp(self.norm2(x)))


class CvTStage(nn.Module):
    """Convolutional token embedding (conv with bias → LayerNorm) then blocks: ``(N, C_in, H, W)`` →
    ``((N, C, H', W'), class token (N, C) or None)``."""

    def __init__(self, c_in: int, dim: int, heads: int, i: int, cfg: CvTConfig, rates: list[float], op, cls: bool):
        super().__init__()
        k, s, p = cfg.patch_sizes[i], cfg.patch_strides[i], cfg.patch_paddings[i]
        self.embed = nn.Conv2d(c_in, dim, k, s, p)
        self.embed_norm = nn.LayerNorm(dim, eps=1e-5)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, dim)) if cls else None
        self.blocks = nn.ModuleList(
            CvTBlock(dim, heads, cfg, rates[j], op, f"stages.{i}.blocks.{j}") for j in range(len(rates))
        )

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor | None]:
        x = self.embed(x)  # (N, C, H', W')
        n, c, h, w = x.shape
        t = self.embed_norm(x.flatten(2).transpose(1, 2))  # (N, H'·W', C)
        num_cls = 0
        if self.cls_token is not None:
            t = torch.cat([self.cls_token.expand(n, -1, -1), t], 1)  # (N, 1 + H'·W', C)
            num_cls = 1
        for block in self.blocks:
            t = block(t, (h, w), num_cls)
        cls = t[:, 0] if num_cls else None
        return t[:, num_cls:].transpose(1, 2).reshape(n, c, h, w), cls  # (N, C, H', W'), (N, C)


class CvT(ConvNet):
    """CvT (S114, "CvT: Introducing Convolutions to Vision Transformers"): three CvT stages → LN(class token) → linear.

    ``forward_stages`` returns the three token maps ``(N, C_i, H/4, W/4)``, ``(N, C_i, H/8, ..)``,
    ``(N, C_i, H/16, ..)``; ``forward_features`` the last stage's class token after the final LayerNorm,
    ``(N, C)``, which the head classifies (as the official code: no pooling). Follows the official
    microsoft/CvT code: truncated-normal (std 0.02) linear weights and class token, zero biases, the
    convs keep PyTorch's default initialisation.

    ``op=`` replaces every depthwise k×k projection conv (stride 1 for queries, 2 for keys and values) with
    ``create_op(op, C, C, k, stride)``; the token-embedding convs stay.
    """

    def __init__(self, cfg: CvTConfig, *, num_classes: int = 1000, in_chans: int = 3, op: str | None = None):
        super().__init__()
        fields = (cfg.dims, cfg.depths, cfg.heads, cfg.patch_sizes, cfg.patch_strides, cfg.patch_paddings)
        if len({len(f) for f in fields}) != 1 or not cfg.dims:
            raise ValueError(f"cvt: dims, depths, heads and the patch settings must be of one length, got {fields}")
        check_int(cfg.kv_stride, "kv_stride", "cvt")
        self.stem = nn.Identity()
        stages, self.feature_info = [], []
        c_in, reduction, last = in_chans, 1, len(cfg.dims) - 1
        for i, (dim, depth, heads) in enumerate(zip(cfg.dims, cfg.depths, cfg.heads, strict=True)):
            rates = drop_path_rates(cfg.drop_path_rate, depth) if i == last else [0.0] * depth
            stages.append(CvTStage(c_in, dim, heads, i, cfg, rates, op, cls=i == last))
            reduction *= cfg.patch_strides[i]
            self.feature_info.append(FeatureInfo(f"stages.{i}", dim, reduction))
            c_in = dim
        self.stages = nn.ModuleList(stages)
        self.norm = nn.LayerNorm(c_in, eps=1e-5)
        self.head = ClassifierHead(c_in, num_classes)
        self._init_weights()

    def _init_weights(self) -> None:
        skip = modules_inside_ops(self)
        for m in self.modules():
            if isinstance(m, nn.Linear) and id(m) not in skip:
                nn.init.trunc_normal_(m.weight, std=0.02)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
        for stage in self.stages:
            if stage.cls_token is not None:
                nn.init.trunc_normal_(stage.cls_token, std=0.02)

    def _run(self, x: Tensor) -> tuple[list[Tensor], Tensor | None]:
        maps, cls = [], None
        for stage in self.stages:
            x, cls = stage(x)
            maps.append(x)
        return maps, cls

    def forward_stages(self, x: Tensor) -> list[Tensor]:
        return self._run(x)[0]

    def forward_features(self, x: Tensor) -> Tensor:
        return self.norm(self._run(x)[1])  # (N, C): the class token


_SIZES = {
    # name: (depths, published count)
    "cvt_13": ((1, 2, 10), 20_000_000),
}
for _name, (_depths, _params) in _SIZES.items():
    register_variant(
        _name,
        CvT,
        CvTConfig(depths=_depths),
        papers=("cvt",),
        params=_params,
        params_source=f"S114 Table 2 ({_name.upper().replace('_', '-')}: {_params // 1_000_000}M parameters)",
        summary=f"{_name.upper().replace('_', '-')} (S114, CvT): conv token embedding + conv-projection attention",
        test_cfg={"depths": (1, 1, 1)},
    )
