"""LSNet (S6, "LSNet: See Large, Focus Small"): LS convolutions, RepVGG depthwise mixers and last-stage attention.

Follows THU-MIG/lsnet ``model/lsnet.py``: a three-conv stride-8 patch embedding, four stages whose blocks alternate
a RepVGG depthwise mixer with SE (even blocks) and an LS convolution (odd blocks; multi-head attention in the last
stage), each followed by a residual BN-ReLU FFN (ratio 2); a depthwise stride-2 conv + 1×1 conv between stages;
pooled BatchNorm + linear head.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from convzoo.layers.squeeze_excite import SqueezeExcite
from convzoo.models.base import ClassifierHead, ConvNet, FeatureInfo
from convzoo.models.registration import make_mixer, register_variant
from convzoo.ops.base import create_op

__all__ = ["LSNet", "LSNetConfig"]


@dataclass(frozen=True)
class LSNetConfig:
    """One LSNet: per-stage widths, depths and attention heads; ``key_dim`` per head; ``patch_size`` (stride 8)."""

    embed_dims: tuple[int, ...] = (64, 128, 256, 384)
    depths: tuple[int, ...] = (0, 2, 8, 10)
    num_heads: tuple[int, ...] = (3, 3, 3, 4)
    key_dim: int = 16
    img_size: int = 224
    patch_size: int = 8
    large_kernel_size: int = 7
    small_kernel_size: int = 3
    ls_groups: int = 8


def conv_bn(c_in: int, c_out: int, k: int = 1, stride: int = 1, groups: int = 1, bn_init: float = 1.0) -> nn.Sequential:
    """Bias-free conv + BatchNorm (the official ``Conv2d_BN``; ``bn_init`` is the BN scale's initial value)."""
    bn = nn.BatchNorm2d(c_out)
    nn.init.constant_(bn.weight, bn_init)
    return nn.Sequential(nn.Conv2d(c_in, c_out, k, stride, k // 2, groups=groups, bias=False), bn)


class RepVGGDW(nn.Module):
    """``BN(DW3×3(x)) + BN(DW1×1(x)) + x`` (mergeable into one 3×3 depthwise conv)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv = conv_bn(channels, channels, 3, groups=channels)
        self.conv1 = conv_bn(channels, channels, 1, groups=channels)

    def forward(self, x: Tensor) -> Tensor:
        return self.conv(x) + self.conv1(x) + x


class Attention(nn.Module):
    """LeViT-style attention with a depthwise 3×3 on the queries and a learned bias per head and offset (|dy|, |dx|).

    The bias table covers offsets of a ``resolution``² grid, stored as the official ``attention_biases``
    ``(heads, resolution²)`` (offset (|dy|, |dx|) at ``|dy|·resolution + |dx|``, the order the official loop meets
    them); smaller grids use the same table, larger ones raise.
    """

    def __init__(self, dim: int, key_dim: int, num_heads: int, attn_ratio: float, resolution: int) -> None:
        super().__init__()
        self.num_heads, self.key_dim, self.scale = num_heads, key_dim, key_dim**-0.5
        self.value_dim = int(attn_ratio * key_dim)
        self.qkv = conv_bn(dim, self.value_dim * num_heads + 2 * key_dim * num_heads)
        self.dw = conv_bn(key_dim * num_heads, key_dim * num_heads, 3, groups=key_dim * num_heads)
        self.proj = nn.Sequential(nn.ReLU(), conv_bn(self.value_dim * num_heads, dim, bn_init=0.0))
        self.resolution = resolution
        self.attention_biases = nn.Parameter(torch.zeros(num_heads, resolution * resolution))

    def forward(self, x: Tensor) -> Tensor:
        batch, _, height, width = x.shape
        if height > self.resolution or width > self.resolution:
            raise ValueError(f"lsnet: attention built for {self.resolution}² tokens got a {height}×{width} map")
        qk = self.key_dim * self.num_heads
        q, k, v = self.qkv(x).split([qk, qk, self.value_dim * self.num_heads], dim=1)
        q = self.dw(q)
        q = q.view(batch, self.num_heads, self.key_dim, height * width)  # (N, h, d_k, T)
        k = k.reshape(batch, self.num_heads, self.key_dim, height * width)  # (N, h, d_k, T)
        v = v.reshape(batch, self.num_heads, self.value_dim, height * width)  # (N, h, d_v, T)
        rows = torch.arange(height, device=x.device).repeat_interleave(width)  # (T,)
        cols = torch.arange(width, device=x.device).repeat(height)  # (T,)
        offset = (rows[:, None] - rows[None]).abs() * self.resolution + (cols[:, None] - cols[None]).abs()  # (T, T)
        attn = (q.transpose(-2, -1) @ k) * self.scale + self.attention_biases[:, offset]  # (N, h, T, T)
        out = v @ attn.softmax(dim=-1).transpose(-2, -1)  # (N, h, d_v, T)
        return self.proj(out.reshape(batch, -1, height, width))  # (N, C, H, W)


class _Residual(nn.Module):
    def __init__(self, module: nn.Module) -> None:
        super().__init__()
        self.module = module

    def forward(self, x: Tensor) -> Tensor:
        return x + self.module(x)


class _Block(nn.Module):
    """mixer (RepVGG DW + SE on even blocks; LS conv, or attention in the last stage, on odd ones) → residual FFN.

    Not a :class:`~convzoo.layers.metanext_block.MetaNeXtBlock`: the paper's block has no norm before its FFN and
    no residual around the mixer as a whole (RepVGG DW and the attention carry their own), the FFN is a BN-ReLU
    1×1 pair with its own residual, and the mixer alternates from block to block.
    """

    def __init__(self, cfg: LSNetConfig, stage: int, index: int, resolution: int, position: str, op: str | None):
        super().__init__()
        dim = cfg.embed_dims[stage]
        if index % 2 == 0:
            self.mixer = RepVGGDW(dim)
            self.se = SqueezeExcite(dim, reduction=4)  # timm SqueezeExcite(dim, 0.25)
        else:
            self.se = nn.Identity()
            if stage == len(cfg.depths) - 1:
                heads = cfg.num_heads[stage]
                ratio = dim / (cfg.key_dim * heads)
                self.mixer = _Residual(Attention(dim, cfg.key_dim, heads, ratio, resolution))
            else:
                k = cfg.large_kernel_size

                def default() -> nn.Module:
                    return create_op("ls", dim, dim, k, small_kernel_size=cfg.small_kernel_size, groups=cfg.ls_groups)

                self.mixer = make_mixer(f"{position}.mixer", op, default, dim, dim, k)
        hidden = 2 * dim
        self.ffn = _Residual(nn.Sequential(conv_bn(dim, hidden), nn.ReLU(), conv_bn(hidden, dim, bn_init=0.0)))

    def forward(self, x: Tensor) -> Tensor:
        return self.ffn(self.se(self.mixer(x)))


class LSNet(ConvNet):
    """LSNet (S6, "See Large, Focus Small"): LS-convolution network of THU-MIG/lsnet (``LSNet`` class).

    Stages as the official ``blocks1..4`` (the downsampling DW 3×3/2 + 1×1 that opens stages 2-4 belongs to them), so
    stage i has reduction ``8·2^i``; an empty stage (LSNet-T's first) passes the patch embedding through.
    ``op=`` replaces the LS convolutions (the family's own spatial mixer, built with its large kernel size; the
    residual inside the LS conv goes with it). Departure: initialisation is PyTorch's default (the official head uses
    truncated normal std 0.02), and the attention bias table is indexed by grid offset so maps smaller than the
    ``img_size / 64`` grid it was built for reuse it.
    """

    def __init__(self, cfg: LSNetConfig, *, num_classes: int = 1000, in_chans: int = 3, op: str | None = None):
        super().__init__()
        dims = cfg.embed_dims
        self.stem = nn.Sequential(
            conv_bn(in_chans, dims[0] // 4, 3, 2),
            nn.ReLU(),
            conv_bn(dims[0] // 4, dims[0] // 2, 3, 2),
            nn.ReLU(),
            conv_bn(dims[0] // 2, dims[0], 3, 2),
        )
        resolution = cfg.img_size // cfg.patch_size
        stages, self.feature_info = [], []
        for stage, depth in enumerate(cfg.depths):
            layers: list[nn.Module] = []
            if stage > 0:
                prev = dims[stage - 1]
                layers += [conv_bn(prev, prev, 3, 2, groups=prev), conv_bn(prev, dims[stage])]
                resolution = (resolution - 1) // 2 + 1
            position = f"stages.{stage}"
            layers += [_Block(cfg, stage, i, resolution, f"{position}.{i + (stage > 0) * 2}", op) for i in range(depth)]
            stages.append(nn.Sequential(*layers))
            self.feature_info.append(FeatureInfo(position, dims[stage], cfg.patch_size * 2**stage))
        self.stages = nn.ModuleList(stages)
        self.head = ClassifierHead(dims[-1], num_classes, norm=nn.BatchNorm1d(dims[-1]))


register_variant(
    "lsnet_t",
    LSNet,
    LSNetConfig(),
    papers=("lsnet",),
    params=11_400_000,
    params_source="S6 THU-MIG/lsnet README table: LSNet-T 11.4M; config lsnet_t in model/lsnet.py",
    summary="LSNet-T (S6, LSNet: See Large, Focus Small)",
    test_size=64,
)
register_variant(
    "lsnet_s",
    LSNet,
    LSNetConfig(embed_dims=(96, 192, 320, 448), depths=(1, 2, 8, 10)),
    papers=("lsnet",),
    params=16_100_000,
    params_source="S6 THU-MIG/lsnet README table: LSNet-S 16.1M; config lsnet_s in model/lsnet.py",
    summary="LSNet-S (S6, LSNet: See Large, Focus Small)",
    test_size=64,
)
register_variant(
    "lsnet_b",
    LSNet,
    LSNetConfig(embed_dims=(128, 256, 384, 512), depths=(4, 6, 8, 10)),
    papers=("lsnet",),
    params=23_200_000,
    params_source="S6 THU-MIG/lsnet README table: LSNet-B 23.2M; config lsnet_b in model/lsnet.py",
    summary="LSNet-B (S6, LSNet: See Large, Focus Small)",
    test_size=64,
    test_cfg={"depths": (1, 2, 2, 2)},
)
