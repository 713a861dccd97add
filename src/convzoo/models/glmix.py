"""GLMix / GLNet (S88, Zhu et al., "Vision Transformer with Grid and Slot: Convolutions on the grid, attention on
soft-clustered semantic slots"): GLNet-4G/9G/16G and GLNet-STL."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from convzoo.core.init import drop_path_rates
from convzoo.core.validate import check_choice, check_int
from convzoo.layers.attention import MultiHeadAttention, TransformerBlock
from convzoo.layers.drop_path import DropPath
from convzoo.layers.layer_scale import optional_layer_scale
from convzoo.layers.norm import LayerNormChannelsFirst
from convzoo.layers.stage import Stage
from convzoo.models.base import ClassifierHead, ConvNet, FeatureInfo
from convzoo.models.registration import make_mixer, modules_inside_ops, register_variant

__all__ = ["GLNetConfig", "GLNet", "GLMixBlock", "soft_cluster", "soft_dispatch"]

MIXERS = ("glmix", "glmix.mha", "mha", "mha_tokens")


@dataclass(frozen=True)
class GLNetConfig:
    """One GLNet: four stages; ``mixers`` per stage: "glmix" (GLMix blocks), "glmix.mha" (GLMix and full-attention
    blocks alternating, GLMix first), "mha" (full attention on the map with conv MLPs) or "mha_tokens" (a plain
    pre-norm Transformer on tokens, the Swin-layout model's last stage).

    ``num_slots``: semantic slots (a square: they start as the adaptive average pool of the input to √S×√S).
    ``local_kernel``: the depthwise conv of the grid branch. ``cpe_kernel`` > 0: a depthwise conv position encoding
    ``x + dw(x)`` before each block. ``mlp_dw``: a residual depthwise 3×3 in the MLP. ``overlapped``: 3×3 stride-2
    conv stem and downsamplers (else 4×4/4 and 2×2/2 patchify). ``norm_first``: downsamplers as BN → conv (else
    conv → BN). ``layer_scale`` > 0: LayerScale with that initial value. ``head_dim``: attention head width.
    """

    depths: tuple[int, ...] = (4, 4, 18, 4)
    dims: tuple[int, ...] = (64, 128, 256, 512)
    mlp_ratio: float = 3.0
    head_dim: int = 32
    mixers: tuple[str, ...] = ("glmix", "glmix", "glmix.mha", "mha")
    num_slots: int = 64
    local_kernel: int = 5
    cpe_kernel: int = 3
    mlp_dw: bool = True
    overlapped: bool = True
    norm_first: bool = False
    layer_scale: float = 0.0
    drop_path_rate: float = 0.0


def soft_cluster(x: Tensor, init_slots: Tensor, scale: Tensor | float) -> tuple[Tensor, Tensor]:
    """Soft clustering of GLMix (S88 eq. 2): pixels (N, L, C) into slots (N, S, C).

    ``logits = scale · n(init_slots) n(x)ᵀ`` (N, S, L) with ``n`` the L2 normalisation over C; each slot is the
    softmax-over-pixels weighted mean of the pixels, ``slots = softmax_L(logits) x``. Returns ``(slots, logits)``.
    """
    logits = F.normalize(init_slots, dim=-1) @ (scale * F.normalize(x, dim=-1)).transpose(1, 2)  # (N, S, L)
    return torch.softmax(logits, dim=-1) @ x, logits  # (N, S, C), (N, S, L)


def soft_dispatch(logits: Tensor, slots: Tensor) -> Tensor:
    """Soft dispatching of GLMix (S88 eq. 4): each pixel takes the softmax-over-slots mix of the slots.

    ``logits`` (N, S, L), ``slots`` (N, S, C) → (N, L, C) = ``softmax_S(logitsᵀ) slots``.
    """
    return torch.softmax(logits.transpose(1, 2), dim=-1) @ slots  # (N, L, C)


class _ConvMlp(nn.Module):
    """1×1 conv → (x + dw3×3(x)) → GELU → 1×1 conv on (N, C, H, W) (the residual depthwise only with ``mlp_dw``)."""

    def __init__(self, dim: int, hidden: int, mlp_dw: bool) -> None:
        super().__init__()
        self.fc1 = nn.Conv2d(dim, hidden, 1)
        self.dw = nn.Conv2d(hidden, hidden, 3, padding=1, groups=hidden) if mlp_dw else None
        self.act = nn.GELU()
        self.fc2 = nn.Conv2d(hidden, dim, 1)

    def forward(self, x: Tensor) -> Tensor:
        x = self.fc1(x)
        if self.dw is not None:
            x = x + self.dw(x)
        return self.fc2(self.act(x))


class GLMixBlock(nn.Module):
    """GLMix block (S88) on (N, C, H, W) → (N, C, H, W).

    ``x ← x + cpe(x)`` (optional); mixing on ``y = LN(x)``: slots = soft_cluster(y, pool_√S(x_in), s) → multi-head
    self-attention among the S slots → soft_dispatch back to the grid, plus the grid branch 1×1 → dw k×k → 1×1 of
    y; ``x ← x + γ₁·mix``; ``x ← x + γ₂·MLP(LN(x))``. ``s`` is a learnt scalar starting at C^-½. The initial slots
    are pooled from the block's input before the position encoding, as in the official code.
    """

    def __init__(self, cfg: GLNetConfig, dim: int, drop_path: float, position: str, op: str | None) -> None:
        super().__init__()
        self.pool = math.isqrt(cfg.num_slots)
        if self.pool**2 != cfg.num_slots:
            raise ValueError(f"glmix: num_slots must be a square (slots start as a √S×√S pool), got {cfg.num_slots}")
        self.pos_conv = _cpe(cfg, dim)
        self.slot_scale = nn.Parameter(torch.tensor(dim**-0.5))
        self.norm1 = LayerNormChannelsFirst(dim)
        self.slot_attn = MultiHeadAttention(dim, dim // cfg.head_dim)
        k = cfg.local_kernel

        def default() -> nn.Module:
            return nn.Conv2d(dim, dim, k, padding=k // 2, groups=dim)

        options = {"groups": dim} if op == "conv" else {}
        self.feature_conv = nn.Sequential(
            nn.Conv2d(dim, dim, 1),
            make_mixer(f"{position}.grid_conv", op, default, dim, dim, k, bias=True, **options),
            nn.Conv2d(dim, dim, 1),
        )
        self.ls1 = optional_layer_scale(dim, cfg.layer_scale)
        self.norm2 = LayerNormChannelsFirst(dim)
        self.mlp = _ConvMlp(dim, int(cfg.mlp_ratio * dim), cfg.mlp_dw)
        self.ls2 = optional_layer_scale(dim, cfg.layer_scale)
        self.drop_path = DropPath(drop_path)

    def mix(self, y: Tensor, init_slots: Tensor) -> Tensor:
        """The token mixing of normed ``y`` (N, C, H, W) given the initial slots (N, S, C)."""
        n, c, h, w = y.shape
        pixels = y.flatten(2).transpose(1, 2)  # (N, H·W, C)
        slots, logits = soft_cluster(pixels, init_slots, self.slot_scale)  # (N, S, C), (N, S, H·W)
        out = soft_dispatch(logits, self.slot_attn(slots))  # (N, H·W, C)
        return out.transpose(1, 2).reshape(n, c, h, w) + self.feature_conv(y)  # (N, C, H, W)

    def forward(self, x: Tensor) -> Tensor:
        init_slots = F.adaptive_avg_pool2d(x, self.pool).flatten(2).transpose(1, 2)  # (N, S, C)
        if self.pos_conv is not None:
            x = x + self.pos_conv(x)
        x = x + self.drop_path(self.ls1(self.mix(self.norm1(x), init_slots)))
        return x + self.drop_path(self.ls2(self.mlp(self.norm2(x))))


class _MapAttentionBlock(nn.Module):
    """Full self-attention block on (N, C, H, W): optional cpe, ``x + MHSA(LN(tokens))``, ``x + MLP(LN(x))``."""

    def __init__(self, cfg: GLNetConfig, dim: int, drop_path: float) -> None:
        super().__init__()
        self.pos_conv = _cpe(cfg, dim)
        self.norm1 = nn.LayerNorm(dim, eps=1e-6)
        self.attn = MultiHeadAttention(dim, dim // cfg.head_dim)
        self.ls1 = optional_layer_scale(dim, cfg.layer_scale, channels_last=True)
        self.norm2 = LayerNormChannelsFirst(dim)
        self.mlp = _ConvMlp(dim, int(cfg.mlp_ratio * dim), cfg.mlp_dw)
        self.ls2 = optional_layer_scale(dim, cfg.layer_scale)
        self.drop_path = DropPath(drop_path)

    def forward(self, x: Tensor) -> Tensor:
        if self.pos_conv is not None:
            x = x + self.pos_conv(x)
        n, c, h, w = x.shape
        t = x.flatten(2).transpose(1, 2)  # (N, H·W, C)
        t = t + self.drop_path(self.ls1(self.attn(self.norm1(t))))
        x = t.transpose(1, 2).reshape(n, c, h, w)  # (N, C, H, W)
        return x + self.drop_path(self.ls2(self.mlp(self.norm2(x))))


class _TokenTransformer(nn.Module):
    """A plain pre-norm Transformer block on the flattened map: (N, C, H, W) → tokens → (N, C, H, W)."""

    def __init__(self, cfg: GLNetConfig, dim: int, drop_path: float) -> None:
        super().__init__()
        self.block = TransformerBlock(
            dim, dim // cfg.head_dim, mlp_ratio=cfg.mlp_ratio, layer_scale=cfg.layer_scale, drop_path=drop_path
        )

    def forward(self, x: Tensor) -> Tensor:
        n, c, h, w = x.shape
        t = self.block(x.flatten(2).transpose(1, 2))  # (N, H·W, C)
        return t.transpose(1, 2).reshape(n, c, h, w)


def _cpe(cfg: GLNetConfig, dim: int) -> nn.Module | None:
    k = cfg.cpe_kernel
    return nn.Conv2d(dim, dim, k, padding=k // 2, groups=dim) if k > 0 else None


class GLNet(ConvNet):
    """GLNet (S88), after rayleizhu/GLMix ``models/glnet.py``: a four-stage hierarchy of GLMix blocks (grid
    convolution + attention among 64 soft-clustered slots), with full attention in the late stages.

    Stem/downsamplers: overlapped (conv 3×3/2 (C/2) → BN → GELU → conv 3×3/2 → BN; between stages conv 3×3/2 → BN)
    or patchify (4×4/4 → BN; between stages BN → 2×2/2 conv). Block norms are LayerNorms over C (eps 1e-6); the
    pre-head norm is a BatchNorm, then global average pool and Linear. Input (N, 3, H, W) → logits. Feature strides
    4, 8, 16, 32. ``op=`` replaces the depthwise ``local_kernel`` conv of every GLMix grid branch
    (``op="conv"`` keeps it depthwise). Weights: truncated-normal (std 0.02) Linear layers with zero biases, convs
    at PyTorch's default, as the official code.
    """

    def __init__(self, cfg: GLNetConfig, *, num_classes: int = 1000, in_chans: int = 3, op: str | None = None):
        super().__init__()
        stages = len(cfg.depths)
        for what in ("dims", "mixers"):
            if len(getattr(cfg, what)) != stages:
                raise ValueError(f"glmix: {what} {getattr(cfg, what)} must have one entry per stage ({stages})")
        for mixer in cfg.mixers:
            check_choice(mixer, MIXERS, "mixers entry", "glmix")
        for dim in cfg.dims:
            if dim % check_int(cfg.head_dim, "head_dim", "glmix"):
                raise ValueError(f"glmix: head_dim {cfg.head_dim} must divide every stage width, got {dim}")
        if op is not None and not any(m.startswith("glmix") for m in cfg.mixers):
            raise ValueError("takes no op= (no stage has GLMix blocks)")
        d0 = cfg.dims[0]
        if cfg.overlapped:
            self.stem = nn.Sequential(
                nn.Conv2d(in_chans, d0 // 2, 3, 2, 1),
                nn.BatchNorm2d(d0 // 2),
                nn.GELU(),
                nn.Conv2d(d0 // 2, d0, 3, 2, 1),
                nn.BatchNorm2d(d0),
            )
        else:
            self.stem = nn.Sequential(nn.Conv2d(in_chans, d0, 4, 4), nn.BatchNorm2d(d0))
        rates = drop_path_rates(cfg.drop_path_rate, sum(cfg.depths))
        stage_list, self.feature_info = [], []
        index, reduction = 0, 4
        for i, (depth, dim, mixer) in enumerate(zip(cfg.depths, cfg.dims, cfg.mixers, strict=True)):
            downsample = None
            if i > 0:
                prev = cfg.dims[i - 1]
                conv = nn.Conv2d(prev, dim, 3, 2, 1) if cfg.overlapped else nn.Conv2d(prev, dim, 2, 2)
                norm = nn.BatchNorm2d(prev if cfg.norm_first else dim)
                downsample = nn.Sequential(norm, conv) if cfg.norm_first else nn.Sequential(conv, norm)
                reduction *= 2
            blocks = []
            for j in range(depth):
                rate, position = rates[index + j], f"stages.{i}.blocks.{j}"
                if mixer == "glmix" or (mixer == "glmix.mha" and j % 2 == 0):
                    blocks.append(GLMixBlock(cfg, dim, rate, position, op))
                elif mixer == "mha_tokens":
                    blocks.append(_TokenTransformer(cfg, dim, rate))
                else:
                    blocks.append(_MapAttentionBlock(cfg, dim, rate))
            index += depth
            stage_list.append(Stage(downsample, blocks))
            self.feature_info.append(FeatureInfo(f"stages.{i}", dim, reduction))
        self.stages = nn.ModuleList(stage_list)
        self.final_norm = nn.BatchNorm2d(cfg.dims[-1])
        self.head = ClassifierHead(cfg.dims[-1], num_classes)
        self._init_weights()

    def _init_weights(self) -> None:
        inside = modules_inside_ops(self)
        for m in self.modules():
            if isinstance(m, nn.Linear) and id(m) not in inside:
                nn.init.trunc_normal_(m.weight, std=0.02)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)


_OFFICIAL = "rayleizhu/GLMix README (= S88 Table 2)"
_CODE = "the official models/glnet.py"
_SIZES = {
    # name: (dims, layer scale, README count, exact count of the official code)
    "4g": ((64, 128, 256, 512), 0.0, "27M", 27_001_593),
    "9g": ((96, 192, 384, 768), 0.0, "60M", 60_010_617),
    "16g": ((128, 256, 512, 1024), 1e-4, "106M", 106_055_161),
}
for _size, (_dims, _ls, _readme, _code) in _SIZES.items():
    register_variant(
        f"glnet_{_size}",
        GLNet,
        GLNetConfig(dims=_dims, layer_scale=_ls),
        papers=("glmix",),
        params=int(float(_readme[:-1]) * 1e6),
        params_source=f"{_OFFICIAL}: glnet_{_size} {_readme}; {_CODE} glnet_{_size}: {_code:,}",
        summary=f"GLNet-{_size.upper()} (S88): GLMix blocks (grid dw conv + 64-slot attention), widths {_dims}",
        test_cfg={"depths": (1, 1, 2, 1), "num_slots": 4, "dims": (32, 64, 128, 256)},
    )
register_variant(
    "glnet_stl",
    GLNet,
    GLNetConfig(
        depths=(2, 2, 6, 2),
        dims=(96, 192, 384, 768),
        mlp_ratio=4.0,
        mixers=("glmix", "glmix", "glmix", "mha_tokens"),
        cpe_kernel=0,
        mlp_dw=False,
        overlapped=False,
        norm_first=True,
    ),
    papers=("glmix",),
    params=30_296_786,
    params_source=f"{_CODE} glnet_stl: 30,296,786; {_OFFICIAL}: 30M (rounded)",
    summary="GLNet-STL (S88): GLMix blocks in the Swin-T layout (depths 2-2-6-2, widths 96-768, patchify stem)",
    test_cfg={"depths": (1, 1, 1, 1), "num_slots": 4, "dims": (32, 64, 128, 256)},
)
