"""HaloNet (S115, Vaswani et al., "Scaling Local Self-Attention for Parameter Efficient Visual Backbones").

Blocked local self-attention (§3): the map is cut into non-overlapping b×b query blocks; each block attends to
its (b + 2h)×(b + 2h) neighbourhood, the block plus a halo of h pixels, with 2-D relative position logits.
HaloNet puts it in place of the 3×3 conv of ResNet bottlenecks.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from convzoo.core.init import drop_path_rates
from convzoo.core.validate import check_int
from convzoo.layers.drop_path import DropPath
from convzoo.models.base import ClassifierHead, ConvNet, FeatureInfo
from convzoo.models.registration import make_mixer, modules_inside_ops, register_variant

__all__ = ["HaloNetConfig", "HaloNet", "HaloAttention"]


class HaloAttention(nn.Module):
    """Blocked local self-attention with halos (S115 §3): ``(N, C, H, W) → (N, C_out, ⌈H/s⌉, ⌈W/s⌉)``.

    Queries are a 1×1 conv of the input (at stride ``s``, which must divide ``block_size``), keys and values a
    1×1 conv at full resolution (no biases). Query block (i, j) — output pixels ``[i·b', (i+1)·b') × [j·b', ...)``
    with b' = block_size / s — attends to input pixels ``[i·b − h, (i+1)·b + h)`` in each axis (b = block_size,
    h = halo). The logit of query q and key k is ``q·k / √d + q·r^H[k_y − q_y + w − 1] + q·r^W[k_x − q_x + w − 1]``
    with ``k_y``, ``k_x`` the key's place in its (w = b + 2h)-wide window and ``q_y``, ``q_x`` the query's in its
    block (relative embeddings of 2w − 1 rows per axis, as timm's ``HaloAttn``). Keys outside the image are
    masked out: maps not a multiple of the block are zero-padded up to one and cropped back, so the result is
    exactly masked full attention (timm instead lets the zero-padded keys take part in the softmax).
    ``heads`` heads; the query/key width per head is ``C_out / heads`` rounded to a multiple of 8 / heads.
    """

    def __init__(
        self,
        dim: int,
        dim_out: int | None = None,
        *,
        stride: int = 1,
        heads: int = 8,
        block_size: int = 8,
        halo: int = 3,
    ) -> None:
        super().__init__()
        dim_out = dim if dim_out is None else dim_out
        for what, value in (("dim", dim), ("dim_out", dim_out), ("heads", heads), ("block_size", block_size)):
            check_int(value, what, "halo_attention")
        check_int(halo, "halo", "halo_attention", low=0)
        if dim_out % heads:
            raise ValueError(f"halo_attention: heads must divide dim_out {dim_out}, got {heads}")
        if stride not in (1, 2) or block_size % stride:
            raise ValueError(f"halo_attention: stride must be 1 or 2 and divide block_size {block_size}, got {stride}")
        self.heads, self.stride, self.block, self.halo = heads, stride, block_size, halo
        self.dim_qk = max(8, (dim_out + 4) // 8 * 8) // heads  # timm's make_divisible(dim_out, 8) // heads
        self.dim_v = dim_out // heads
        self.win = block_size + 2 * halo
        self.scale = self.dim_qk**-0.5
        self.q = nn.Conv2d(dim, heads * self.dim_qk, 1, stride=stride, bias=False)
        self.kv = nn.Conv2d(dim, heads * (self.dim_qk + self.dim_v), 1, bias=False)
        self.rel_h = nn.Parameter(torch.randn(2 * self.win - 1, self.dim_qk) * self.scale)
        self.rel_w = nn.Parameter(torch.randn(2 * self.win - 1, self.dim_qk) * self.scale)

    def _relative_index(self, queries: int) -> Tensor:
        """``(queries, w)``: the embedding row ``k − q + w − 1`` for query place q in its block, key place k."""
        q = torch.arange(queries).unsqueeze(1)
        k = torch.arange(self.win).unsqueeze(0)
        return k - q + self.win - 1

    def forward(self, x: Tensor) -> Tensor:
        n, _, h, w = x.shape
        s, b, halo, win, heads = self.stride, self.block, self.halo, self.win, self.heads
        bq = b // s  # query block side
        ho, wo = math.ceil(h / s), math.ceil(w / s)
        nh, nw = math.ceil(ho / bq), math.ceil(wo / bq)
        q = F.pad(self.q(x), (0, nw * bq - wo, 0, nh * bq - ho))  # (N, heads·d, nh·b', nw·b')
        q = q.reshape(n, heads, self.dim_qk, nh, bq, nw, bq).permute(0, 1, 3, 5, 4, 6, 2)  # (N, hd, nh, nw, b', b', d)
        pad = (halo, nw * b - w + halo, halo, nh * b - h + halo)
        kv = F.pad(self.kv(x), pad)  # (N, heads·(d + d_v), nh·b + 2h, nw·b + 2h)
        kv = kv.unfold(2, win, b).unfold(3, win, b)  # (N, heads·(d + d_v), nh, nw, w, w)
        kv = kv.reshape(n, heads, self.dim_qk + self.dim_v, nh, nw, win * win).permute(0, 1, 3, 4, 5, 2)
        k, v = kv.split([self.dim_qk, self.dim_v], dim=-1)  # (N, hd, nh, nw, w², d), (.., d_v)
        valid = F.pad(x.new_ones(1, 1, h, w), pad).unfold(2, win, b).unfold(3, win, b)  # (1, 1, nh, nw, w, w)
        valid = valid.reshape(1, 1, nh, nw, 1, win * win) > 0
        qf = q.reshape(n, heads, nh, nw, bq * bq, self.dim_qk)  # (N, hd, nh, nw, b'², d)
        logits = (qf @ k.transpose(-2, -1)) * self.scale  # (N, hd, nh, nw, b'², w²)
        index = self._relative_index(bq).to(x.device)  # (b', w)
        rel_h = (q @ self.rel_h.t())[..., index]  # (N, hd, nh, nw, b', b', 2w-1) → (.., qy, qx, qy', w)
        rel_h = rel_h.diagonal(dim1=4, dim2=6).permute(0, 1, 2, 3, 6, 4, 5)  # (.., qy, qx, w): rows of q_y
        rel_w = (q @ self.rel_w.t())[..., index]  # (.., qy, qx, qx', w)
        rel_w = rel_w.diagonal(dim1=5, dim2=6)  # (.., qy, w, qx)
        rel_w = rel_w.transpose(-1, -2)  # (.., qy, qx, w)
        rel = rel_h.unsqueeze(-1) + rel_w.unsqueeze(-2)  # (.., qy, qx, w_y, w_x)
        logits = logits + rel.reshape(n, heads, nh, nw, bq * bq, win * win)
        logits = logits.masked_fill(~valid, float("-inf"))
        out = torch.softmax(logits, dim=-1) @ v  # (N, hd, nh, nw, b'², d_v)
        out = out.reshape(n, heads, nh, nw, bq, bq, self.dim_v).permute(0, 1, 6, 2, 4, 3, 5)  # (N, hd, d_v, nh, b', ..)
        out = out.reshape(n, heads * self.dim_v, nh * bq, nw * bq)
        return out[:, :, :ho, :wo]  # (N, C_out, ⌈H/s⌉, ⌈W/s⌉)


@dataclass(frozen=True)
class HaloNetConfig:
    """One HaloNet (timm's ``halonet_h1`` config: the paper's H1 layout).

    ``depths``/``widths``/``strides``: per stage, bottleneck blocks, output channels and the first block's stride.
    ``bottle_ratio``: the attention width over the output width (1.0). ``block_size``/``halo``/``heads``: the
    attention (8, 3, 8). ``stem_width``: the 7×7/2 stem conv (then a 3×3/2 max-pool). ``drop_path_rate``: 0.
    """

    depths: tuple[int, ...] = (3, 3, 10, 3)
    widths: tuple[int, ...] = (64, 128, 256, 512)
    strides: tuple[int, ...] = (1, 2, 2, 2)
    bottle_ratio: float = 1.0
    block_size: int = 8
    halo: int = 3
    heads: int = 8
    stem_width: int = 64
    drop_path_rate: float = 0.0


def _conv_bn(c_in: int, c_out: int, relu: bool, stride: int = 1) -> nn.Sequential:
    layers: list[nn.Module] = [nn.Conv2d(c_in, c_out, 1, stride, bias=False), nn.BatchNorm2d(c_out)]
    return nn.Sequential(*layers, nn.ReLU()) if relu else nn.Sequential(*layers)


class HaloBlock(nn.Module):
    """Bottleneck with halo attention in place of the 3×3 conv: 1×1 → BN → ReLU → halo attention (stride s) → BN →
    ReLU → 1×1 → BN (γ zero-initialised), plus the shortcut (1×1/s conv → BN when the shape changes), → ReLU."""

    def __init__(self, c_in: int, c_out: int, stride: int, cfg: HaloNetConfig, drop_path: float) -> None:
        super().__init__()
        mid = int(c_out * cfg.bottle_ratio)
        self.shortcut = _conv_bn(c_in, c_out, False, stride) if (c_in != c_out or stride != 1) else nn.Identity()
        self.conv1 = _conv_bn(c_in, mid, True)
        self.attn = HaloAttention(mid, stride=stride, heads=cfg.heads, block_size=cfg.block_size, halo=cfg.halo)
        self.post_attn = nn.Sequential(nn.BatchNorm2d(mid), nn.ReLU())
        self.conv3 = _conv_bn(mid, c_out, False)
        self.drop_path = DropPath(drop_path)

    def forward(self, x: Tensor) -> Tensor:
        y = self.conv3(self.post_attn(self.attn(self.conv1(x))))
        return F.relu(self.shortcut(x) + self.drop_path(y))


class HaloNet(ConvNet):
    """HaloNet (S115): 7×7/2 conv stem + max-pool → four stages of halo-attention bottlenecks → pool → linear.

    Stages at strides 4, 8, 16, 32 (``features_only``). Follows timm's byobnet ``halonet_h1`` (BN eps 1e-5, no
    final 1×1 conv, zero-initialised last BN of each block); the attention masks keys outside the image
    (see :class:`HaloAttention`), so any input size works. ``op=`` replaces the stem's 7×7/2 conv (the only
    spatial convolution) with ``create_op(op, C_in, stem_width, 7, 2)``.
    """

    def __init__(self, cfg: HaloNetConfig, *, num_classes: int = 1000, in_chans: int = 3, op: str | None = None):
        super().__init__()
        if not (len(cfg.depths) == len(cfg.widths) == len(cfg.strides)) or not cfg.depths:
            raise ValueError(f"halonet: depths {cfg.depths}, widths {cfg.widths} and strides {cfg.strides} must match")
        s = cfg.stem_width

        def default() -> nn.Module:
            return nn.Conv2d(in_chans, s, 7, 2, 3, bias=False)

        conv = make_mixer("stem.0", op, default, in_chans, s, 7, 2)
        self.stem = nn.Sequential(conv, nn.BatchNorm2d(s), nn.ReLU(), nn.MaxPool2d(3, 2, 1))
        rates = drop_path_rates(cfg.drop_path_rate, sum(cfg.depths))
        stages, self.feature_info, c, reduction, index = [], [], s, 4, 0
        for i, (depth, width, stride) in enumerate(zip(cfg.depths, cfg.widths, cfg.strides, strict=True)):
            blocks = []
            for j in range(depth):
                blocks.append(HaloBlock(c, width, stride if j == 0 else 1, cfg, rates[index]))
                c, index = width, index + 1
            reduction *= stride
            stages.append(nn.Sequential(*blocks))
            self.feature_info.append(FeatureInfo(f"stages.{i}", width, reduction))
        self.stages = nn.ModuleList(stages)
        self.head = ClassifierHead(c, num_classes)
        self._init_weights()

    def _init_weights(self) -> None:
        skip = modules_inside_ops(self)
        for m in self.modules():
            if isinstance(m, nn.Conv2d) and id(m) not in skip:
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.Linear):
                nn.init.normal_(m.weight, std=0.01)
                nn.init.zeros_(m.bias)
        for m in self.modules():
            if isinstance(m, HaloBlock):
                nn.init.zeros_(m.conv3[1].weight)


register_variant(
    "halonet_h1",
    HaloNet,
    HaloNetConfig(),
    papers=("halonet",),
    params=8_100_056,
    params_source="timm byoanet halonet_h1 config (HaloNet-H1: block 8, halo 3, 256² input): 8,100,056",
    input_size=(3, 256, 256),
    summary="HaloNet-H1 (S115, Scaling Local Self-Attention): halo-attention bottlenecks (b = 8, h = 3)",
    test_cfg={"depths": (1, 1, 1, 1)},
)
