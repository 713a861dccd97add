"""ConTNet (S4, Yan et al., "ConTNet: Why not use convolution and transformer at the same time?"): ConTNet-Ti/S/M/B,
convolutions alternating with patch-wise standard transformer encoders."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from convzoo.core.validate import check_int
from convzoo.layers.attention import MultiHeadAttention
from convzoo.layers.mlp import Mlp
from convzoo.models.base import ClassifierHead, ConvNet, FeatureInfo
from convzoo.models.registration import make_mixer, modules_inside_ops, register_variant

__all__ = ["ConTNetConfig", "ConTNet", "PatchTransformerEncoder"]


@dataclass(frozen=True)
class ConTNetConfig:
    """One ConTNet: a 7×7/2 conv + max-pool stem, then four stages of ConT blocks (channels ``stem_dim · 2^i`` in,
    doubled by each stage's last block).

    ``depths``: ConT blocks per stage. ``mlp_dims``/``heads``: the STE MLP width and heads per stage.
    ``patch_sizes``: per stage, the patch side of the block's two STEs (the official (7, 14) in stages 1–3 and
    (7, 7) in stage 4, so the 224 input's 56, 28, 14, 7 maps split evenly). ``last_dropout``: dropout after each
    stage's last block (ConTNet-B). ``dropout``: inside the STEs, per stage.
    """

    depths: tuple[int, ...] = (1, 1, 1, 1)
    stem_dim: int = 64
    mlp_dims: tuple[int, ...] = (256, 512, 1024, 1024)
    heads: tuple[int, ...] = (1, 2, 4, 8)
    patch_sizes: tuple[tuple[int, int], ...] = ((7, 14), (7, 14), (7, 14), (7, 7))
    dropout: tuple[float, ...] = (0.0, 0.0, 0.0, 0.0)
    last_dropout: float = 0.0


class PatchTransformerEncoder(nn.Module):
    """ConTNet's standard transformer encoder (STE) on (N, C, H, W) → (N, C, H, W), attention inside p×p patches.

    The map is cut into non-overlapping p×p patches (H and W must be multiples of p); each patch's p² pixels are
    tokens of one sequence. The first C/2 channels get a learnt embedding along rows, the last C/2 along columns
    (2 · p · C/2 parameters); then the post-norm encoder of the official default (``pre_norm=False``):
    ``x = LN(x + MHSA(x))``, ``x = LN(x + MLP(x))`` (LayerNorm eps 1e-5, qkv bias, GELU MLP). Departure: with
    ``dropout`` > 0 (ConTNet-B stages 3–4) the MLP's dropout is applied once after it; the official code also drops
    after its activation.
    """

    def __init__(self, dim: int, mlp_dim: int, heads: int, patch: int, dropout: float = 0.0) -> None:
        super().__init__()
        if dim % 2:
            raise ValueError(f"contnet: the STE splits channels in halves for its position embedding, got {dim}")
        self.patch = check_int(patch, "patch", "contnet")
        self.pe_h = nn.Parameter(torch.zeros(1, patch, 1, dim // 2))
        self.pe_w = nn.Parameter(torch.zeros(1, 1, patch, dim // 2))
        self.attn = MultiHeadAttention(dim, heads, attn_drop=dropout, proj_drop=dropout)
        self.norm1 = nn.LayerNorm(dim)
        self.mlp = Mlp(dim, mlp_dim)
        self.drop = nn.Dropout(dropout)
        self.norm2 = nn.LayerNorm(dim)

    def forward(self, x: Tensor) -> Tensor:
        n, c, h, w = x.shape
        p = self.patch
        if h % p or w % p:
            raise ValueError(f"contnet: a {h}×{w} map does not split into {p}×{p} patches (set patch_sizes)")
        gh, gw = h // p, w // p
        t = x.reshape(n, c, gh, p, gw, p).permute(0, 2, 4, 3, 5, 1).reshape(n * gh * gw, p, p, c)  # (N·g, p, p, C)
        t = torch.cat([t[..., : c // 2] + self.pe_h, t[..., c // 2 :] + self.pe_w], dim=-1)  # rows | columns
        t = t.reshape(n * gh * gw, p * p, c)  # (N·g, p², C) tokens of each patch
        t = self.norm1(t + self.attn(t))
        t = self.norm2(t + self.drop(self.mlp(t)))
        t = t.reshape(n, gh, gw, p, p, c).permute(0, 5, 1, 3, 2, 4)  # (N, C, gh, p, gw, p)
        return t.reshape(n, c, h, w)


class _ConTBlock(nn.Module):
    """Pre-activation ConT block on (N, C, H, W): ``a = ReLU(BN(x))``; ``y = conv(STE₂(STE₁(a))) + shortcut``.

    ``conv``: 3×3 (stride 1 or 2, no bias; ``op=`` replaces it) or, in the last stage's last block, a 1×1; the
    shortcut is ``x`` or, for the block that changes width, a 1×1 conv (stride ``stride``, no bias) of ``a``.
    """

    def __init__(
        self, cfg: ConTNetConfig, i: int, dim: int, out: int, stride: int, last: bool, position: str, op: str | None
    ) -> None:
        super().__init__()
        self.bn = nn.BatchNorm2d(dim)
        self.relu = nn.ReLU()
        p1, p2 = cfg.patch_sizes[i]
        self.ste1 = PatchTransformerEncoder(dim, cfg.mlp_dims[i], cfg.heads[i], p1, cfg.dropout[i])
        self.ste2 = PatchTransformerEncoder(dim, cfg.mlp_dims[i], cfg.heads[i], p2, cfg.dropout[i])
        self.downsample = nn.Conv2d(dim, out, 1, stride, bias=False) if last else None
        if last and stride == 1:
            self.out_conv = nn.Conv2d(dim, out, 1, bias=False)
        else:

            def default() -> nn.Module:
                return nn.Conv2d(dim, out, 3, stride, 1, bias=False)

            self.out_conv = make_mixer(f"{position}.out_conv", op, default, dim, out, 3, stride)
        self.dropout = nn.Dropout(cfg.last_dropout) if last and stride == 1 else nn.Identity()

    def forward(self, x: Tensor) -> Tensor:
        pre = self.relu(self.bn(x))
        shortcut = x if self.downsample is None else self.downsample(pre)
        return self.dropout(self.out_conv(self.ste2(self.ste1(pre))) + shortcut)


class ConTNet(ConvNet):
    """ConTNet (S4), after yan-hao-tian/ConTNet ``ConTNet.py`` with its ``main.py`` defaults (absolute position
    embeddings, qkv bias, post-norm STEs, 1×1 strided shortcut).

    Stem: conv 7×7/2 (no bias, no norm) → max-pool 3×3/2. Stage i (width ``stem_dim · 2^i``): ConT blocks, the last
    doubling the width and, in stages 1–3, halving the resolution (stage 4 keeps it). The network has no final
    norm: the last pre-activation output is pooled and classified. Input (N, 3, H, W) → logits; H/4 must split into
    the patch sizes (224 with the official sizes). Feature strides 8, 16, 32, 32.

    ``op=`` replaces every 3×3 conv of the ConT blocks (C → C or C → 2C, stride 1 or 2). Weights: Kaiming-normal
    (fan-out) convs, truncated-normal (std 0.02) Linear layers with zero biases, position embeddings at zero.
    """

    def __init__(self, cfg: ConTNetConfig, *, num_classes: int = 1000, in_chans: int = 3, op: str | None = None):
        super().__init__()
        stages = len(cfg.depths)
        for what in ("mlp_dims", "heads", "patch_sizes", "dropout"):
            if len(getattr(cfg, what)) != stages:
                raise ValueError(f"contnet: {what} {getattr(cfg, what)} must have one entry per stage ({stages})")
        self.stem = nn.Sequential(nn.Conv2d(in_chans, cfg.stem_dim, 7, 2, 3, bias=False), nn.MaxPool2d(3, 2, 1))
        stage_list, self.feature_info = [], []
        reduction = 4
        for i, depth in enumerate(cfg.depths):
            check_int(depth, "depths entry", "contnet")
            dim = cfg.stem_dim * 2**i
            stride = 1 if i == stages - 1 else 2
            blocks = []
            for j in range(depth):
                last = j == depth - 1
                out, s = (2 * dim, stride) if last else (dim, 1)
                blocks.append(_ConTBlock(cfg, i, dim, out, s, last, f"stages.{i}.{j}", op))
            reduction *= stride
            stage_list.append(nn.Sequential(*blocks))
            self.feature_info.append(FeatureInfo(f"stages.{i}", 2 * dim, reduction))
        self.stages = nn.ModuleList(stage_list)
        self.head = ClassifierHead(2 * cfg.stem_dim * 2 ** (stages - 1), num_classes)
        self._init_weights()

    def _init_weights(self) -> None:
        inside = modules_inside_ops(self)
        for m in self.modules():
            if id(m) in inside:
                continue
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.Linear):
                nn.init.trunc_normal_(m.weight, std=0.02)
                nn.init.zeros_(m.bias)


_README = "yan-hao-tian/ConTNet README (= S4 Table 2)"
_CODE = "the official ConTNet.py create_ConTNet_*, main.py defaults"
_SIZES = {
    # name: (depths, stem width, MLP widths, README count, exact count of the official code)
    "ti": ((1, 1, 1, 1), 48, (196, 392, 768, 768), "5.8M", 5_888_992),
    "s": ((1, 1, 1, 1), 64, (256, 512, 1024, 1024), "10.1M", 10_103_400),
    "m": ((2, 2, 2, 2), 64, (256, 512, 1024, 1024), "19.2M", 19_536_936),
    "b": ((3, 4, 6, 3), 64, (256, 512, 1024, 1024), "39.6M", 36_043_112),
}
for _size, (_depths, _stem, _mlp, _readme, _code) in _SIZES.items():
    _agree = "agrees" if _size == "s" else "disagrees (the README's sizes for Ti/M/B are not those of the code)"
    register_variant(
        f"contnet_{_size}",
        ConTNet,
        ConTNetConfig(
            depths=_depths,
            stem_dim=_stem,
            mlp_dims=_mlp,
            dropout=(0.0, 0.0, 0.1, 0.1) if _size == "b" else (0.0,) * 4,
            last_dropout=0.2 if _size == "b" else 0.0,
        ),
        papers=("contnet",),
        params=10_100_000 if _size == "s" else _code,
        params_source=f"{_CODE}: {_code:,}; {_README}: ConT-{_size.capitalize()} {_readme}, which {_agree}",
        summary=f"ConTNet-{_size.capitalize()} (S4): depths {_depths}, stem width {_stem}, STE MLP widths {_mlp}",
        test_cfg={"depths": (1, 1, 1, 1), "stem_dim": 16, "patch_sizes": ((2, 2), (2, 2), (1, 1), (1, 1))},
    )
