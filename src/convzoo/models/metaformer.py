"""MetaFormer baselines (S18, "MetaFormer Baselines for Vision"): IdentityFormer, RandFormer, PoolFormerV2,
ConvFormer and CAFormer, one family that differs only in the token mixer of each stage."""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from convzoo.core.init import drop_path_rates, trunc_normal_init_
from convzoo.layers.activations import StarReLU
from convzoo.layers.metaformer_block import MetaFormerBlock
from convzoo.layers.mlp import Mlp
from convzoo.layers.stage import Stage
from convzoo.models.base import ClassifierHead, ConvNet, FeatureInfo
from convzoo.models.registration import make_mixer, register_variant

__all__ = ["MetaFormerConfig", "MetaFormer"]

MIXERS = ("identity", "random", "pool", "sepconv", "attention")


@dataclass(frozen=True)
class MetaFormerConfig:
    """One MetaFormer: four stages of ``x + mixer(norm(x))``, ``x + mlp(norm(x))`` blocks.

    ``mixers``: the token mixer of each stage, one of "identity", "random" (a frozen random token-mixing matrix),
    "pool" (average pool minus input), "sepconv" (pw → StarReLU → depthwise k×k → pw) or "attention".
    ``norm``: "channels" (LayerNorm over C, the ConvFormer/CAFormer blocks) or "tokens" (LayerNorm over H, W and C
    with a per-channel scale, the S12 baselines). Every LayerNorm of the blocks and downsamplers is bias-free.
    ``res_scale``: per stage, whether both residual branches get a learnable per-channel scale of the shortcut
    (init 1). ``mlp_head``: the MlpHead (Linear 4C, SquaredReLU, LayerNorm, Linear) instead of one Linear.
    ``image_size``: the input side the "random" mixers are drawn for (the matrix is (H·W)², fixed per stage).
    """

    depths: tuple[int, ...] = (2, 2, 6, 2)
    dims: tuple[int, ...] = (64, 128, 320, 512)
    mixers: tuple[str, ...] = ("identity",) * 4
    norm: str = "channels"
    res_scale: tuple[bool, ...] = (False, False, True, True)
    mlp_head: bool = False
    mlp_ratio: float = 4.0
    head_ratio: float = 4.0
    sepconv_expansion: float = 2.0
    sepconv_kernel: int = 7
    pool_size: int = 3
    head_dim: int = 32
    image_size: int = 224
    drop_path_rate: float = 0.0
    head_drop: float = 0.0


class _Norm(nn.Module):
    """Bias-free LayerNorm of a channels-last (N, H, W, C) tensor, over C or over (H, W, C); per-channel scale."""

    def __init__(self, channels: int, over_tokens: bool = False, eps: float = 1e-6) -> None:
        super().__init__()
        self.over_tokens = over_tokens
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(channels))

    def forward(self, x: Tensor) -> Tensor:
        if self.over_tokens:
            return F.layer_norm(x, x.shape[1:], eps=self.eps) * self.weight  # (N, H, W, C)
        return F.layer_norm(x, x.shape[-1:], self.weight, None, self.eps)  # (N, H, W, C)

    def extra_repr(self) -> str:
        return f"{self.weight.numel()}, over={'(H, W, C)' if self.over_tokens else 'C'}, eps={self.eps}, bias=False"


class _SquaredReLU(nn.Module):
    """relu(x)², the activation of the MlpHead."""

    def forward(self, x: Tensor) -> Tensor:
        return torch.relu(x).square()


class _Pooling(nn.Module):
    """PoolFormer token mixer on (N, H, W, C): average pool (no padded zeros counted) minus the input."""

    def __init__(self, pool_size: int) -> None:
        super().__init__()
        self.pool = nn.AvgPool2d(pool_size, 1, pool_size // 2, count_include_pad=False)

    def forward(self, x: Tensor) -> Tensor:
        pooled = self.pool(x.permute(0, 3, 1, 2)).permute(0, 2, 3, 1)  # (N, C, H, W) pooled -> (N, H, W, C)
        return pooled - x


class _RandomMixing(nn.Module):
    """RandFormer token mixer: ``y = R x`` over the H·W tokens with R = softmax(U[0, 1)) rows, drawn once, frozen.

    R is a persistent buffer: saved with the model, never trained, and not counted as a parameter (the paper
    reports RandFormer-S12 as 11.9M + 0.2M frozen random entries).
    """

    def __init__(self, num_tokens: int) -> None:
        super().__init__()
        self.register_buffer("random_matrix", torch.softmax(torch.rand(num_tokens, num_tokens), dim=-1))

    def forward(self, x: Tensor) -> Tensor:
        n, h, w, c = x.shape
        tokens = self.random_matrix.shape[0]
        if h * w != tokens:
            raise ValueError(
                f"randformer: the random mixer was drawn for {tokens} tokens, got a {h}×{w} map "
                f"(build the model with image_size matching the input)"
            )
        mixed = torch.einsum("mn,bnc->bmc", self.random_matrix, x.reshape(n, h * w, c))  # (N, H·W, C)
        return mixed.reshape(n, h, w, c)  # (N, H, W, C)


class _SepConv(nn.Module):
    """ConvFormer token mixer on (N, H, W, C): pw (C → 2C) → StarReLU → depthwise k×k → pw (2C → C), no biases."""

    def __init__(self, dim: int, expansion: float, mixer: nn.Module) -> None:
        super().__init__()
        hidden = int(expansion * dim)
        self.pwconv1 = nn.Linear(dim, hidden, bias=False)
        self.act1 = StarReLU()
        self.dwconv = mixer
        self.pwconv2 = nn.Linear(hidden, dim, bias=False)

    def forward(self, x: Tensor) -> Tensor:
        x = self.act1(self.pwconv1(x))  # (N, H, W, 2C)
        x = self.dwconv(x.permute(0, 3, 1, 2)).permute(0, 2, 3, 1)  # (N, 2C, H, W) mixed -> (N, H, W, 2C)
        return self.pwconv2(x)


class _Attention(nn.Module):
    """Multi-head self-attention over the H·W tokens of (N, H, W, C); heads of width ``head_dim``, no biases."""

    def __init__(self, dim: int, head_dim: int) -> None:
        super().__init__()
        self.head_dim = head_dim
        self.num_heads = max(1, dim // head_dim)
        width = self.num_heads * head_dim
        self.qkv = nn.Linear(dim, 3 * width, bias=False)
        self.proj = nn.Linear(width, dim, bias=False)

    def forward(self, x: Tensor) -> Tensor:
        n, h, w, _ = x.shape
        qkv = self.qkv(x).reshape(n, h * w, 3, self.num_heads, self.head_dim)  # (N, L, 3, heads, d)
        q, k, v = qkv.permute(2, 0, 3, 1, 4).unbind(0)  # each (N, heads, L, d)
        y = F.scaled_dot_product_attention(q, k, v)  # (N, heads, L, d), softmax(q kᵀ / √d) v
        y = y.transpose(1, 2).reshape(n, h, w, self.num_heads * self.head_dim)  # (N, H, W, heads·d)
        return self.proj(y)


def _block(cfg: MetaFormerConfig, dim: int, mixer: nn.Module, res_scale: bool, drop_path: float) -> MetaFormerBlock:
    """One block on (N, H, W, C): ``x = s1·x + mixer(norm1(x))``, ``x = s2·x + mlp(norm2(x))``, StarReLU MLP."""
    over_tokens = cfg.norm == "tokens"
    return MetaFormerBlock(
        _Norm(dim, over_tokens),
        mixer,
        _Norm(dim, over_tokens),
        Mlp(dim, int(cfg.mlp_ratio * dim), act=StarReLU, bias=False),
        channels=dim,
        res_scale=res_scale,
        drop_path=drop_path,
        channels_last=True,
    )


class _Downsample(nn.Module):
    """(N, C, H, W) → conv (k, stride, padding, with bias), with a bias-free LayerNorm before or after it."""

    def __init__(self, in_ch: int, out_ch: int, kernel: int, stride: int, padding: int, pre_norm: bool) -> None:
        super().__init__()
        self.pre_norm = _Norm(in_ch) if pre_norm else None
        self.conv = nn.Conv2d(in_ch, out_ch, kernel, stride, padding)
        self.post_norm = None if pre_norm else _Norm(out_ch)

    def forward(self, x: Tensor) -> Tensor:
        if self.pre_norm is not None:
            x = self.pre_norm(x.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)  # norm over C as (N, H, W, C) -> (N, C, H, W)
        x = self.conv(x)
        if self.post_norm is not None:
            x = self.post_norm(x.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)  # norm over C as (N, H, W, C) -> (N, C, H, W)
        return x


class MetaFormer(ConvNet):
    """MetaFormer baselines (S18, Yu et al., "MetaFormer Baselines for Vision"), after sail-sg/metaformer.

    Stem: conv 7×7 stride 4 (padding 2) then LayerNorm; stages 2–4 start with LayerNorm then conv 3×3 stride 2.
    Blocks: bias-free LayerNorms, StarReLU MLPs (ratio 4, no biases), res-scale (learnable per-channel scale of the
    shortcut, init 1) in stages 3–4, no layer scale. Head: global average pool, LayerNorm (eps 1e-6), then a Linear
    (the S12 baselines) or the MlpHead (Linear 4C, SquaredReLU, LayerNorm, Linear; ConvFormer/CAFormer).

    ``op=`` replaces the 7×7 depthwise conv of every SepConv mixer (ConvFormer, CAFormer stages 1–2); ``op="conv"``
    keeps it depthwise (``groups`` = channels). IdentityFormer, RandFormer and PoolFormerV2 are registered with
    ``takes_op=False``: their mixers (identity, a frozen random matrix over tokens, average pooling) contain no
    convolution to replace. RandFormer's matrices are drawn for ``image_size`` (224: 196 tokens in stage 3, 49 in
    stage 4) and kept as persistent buffers, not parameters (the official code holds them in frozen Parameters; the
    paper counts them apart, "11.9M + 0.2M"); any other input size raises.
    """

    def __init__(self, cfg: MetaFormerConfig, *, num_classes: int = 1000, in_chans: int = 3, op: str | None = None):
        super().__init__()
        stages = len(cfg.depths)
        for what in ("dims", "mixers", "res_scale"):
            if len(getattr(cfg, what)) != stages:
                raise ValueError(f"metaformer: {what} {getattr(cfg, what)} must have one entry per stage ({stages})")
        unknown = [m for m in cfg.mixers if m not in MIXERS]
        if unknown:
            raise ValueError(f"metaformer: unknown mixer(s) {unknown}; expected one of {', '.join(MIXERS)}")
        if cfg.norm not in ("channels", "tokens"):
            raise ValueError(f"metaformer: norm must be 'channels' or 'tokens', got {cfg.norm!r}")
        if op is not None and "sepconv" not in cfg.mixers:
            raise ValueError("takes no op= (its token mixers contain no convolution)")
        self.stem = _Downsample(in_chans, cfg.dims[0], 7, 4, 2, pre_norm=False)
        rates = drop_path_rates(cfg.drop_path_rate, sum(cfg.depths))
        reduction, in_ch, index = 4, cfg.dims[0], 0
        stage_list, self.feature_info = [], []
        for i, (depth, dim) in enumerate(zip(cfg.depths, cfg.dims, strict=True)):
            downsample = None
            if i > 0:
                downsample = _Downsample(in_ch, dim, 3, 2, 1, pre_norm=True)
                reduction *= 2
            side = -(-cfg.image_size // reduction)
            blocks = []
            for j in range(depth):
                mixer = self._mixer(cfg, cfg.mixers[i], dim, side * side, f"stages.{i}.blocks.{j}", op)
                blocks.append(_block(cfg, dim, mixer, cfg.res_scale[i], rates[index]))
                index += 1
            stage_list.append(Stage(downsample, blocks, channels_last=True))
            self.feature_info.append(FeatureInfo(f"stages.{i}", dim, reduction))
            in_ch = dim
        self.stages = nn.ModuleList(stage_list)
        self.head = ClassifierHead(
            in_ch,
            num_classes,
            norm=nn.LayerNorm(in_ch, eps=1e-6),
            drop=cfg.head_drop,
            hidden=int(cfg.head_ratio * in_ch) if cfg.mlp_head else None,
            act=_SquaredReLU,
        )
        self._init_weights()

    @staticmethod
    def _mixer(cfg: MetaFormerConfig, kind: str, dim: int, tokens: int, position: str, op: str | None) -> nn.Module:
        if kind == "identity":
            return nn.Identity()
        if kind == "random":
            return _RandomMixing(tokens)
        if kind == "pool":
            return _Pooling(cfg.pool_size)
        if kind == "attention":
            return _Attention(dim, cfg.head_dim)
        hidden, k = int(cfg.sepconv_expansion * dim), cfg.sepconv_kernel

        def default() -> nn.Module:
            return nn.Conv2d(hidden, hidden, k, padding=k // 2, groups=hidden, bias=False)

        options = {"groups": hidden} if op == "conv" else {}
        dwconv = make_mixer(f"{position}.dwconv", op, default, hidden, hidden, k, **options)
        return _SepConv(dim, cfg.sepconv_expansion, dwconv)

    def _init_weights(self) -> None:
        trunc_normal_init_(self)


_OFFICIAL = "sail-sg/metaformer metaformer_baselines.py"
_S12 = {"depths": (2, 2, 6, 2), "dims": (64, 128, 320, 512), "norm": "tokens"}
_S18 = {"depths": (3, 3, 9, 3), "dims": (64, 128, 320, 512), "norm": "channels", "mlp_head": True}
_S12_PARAMS = 11_891_712  # identity, pooling and random mixing add no trainable parameters

register_variant(
    "identityformer_s12",
    MetaFormer,
    MetaFormerConfig(**_S12, mixers=("identity",) * 4),
    papers=("metaformer",),
    params=_S12_PARAMS,
    params_source=f"S18 / official README: 11.9M; {_OFFICIAL} (identityformer_s12): 11,891,712",
    summary="IdentityFormer-S12 (S18): MetaFormer with identity token mixers",
    takes_op=False,
)
register_variant(
    "randformer_s12",
    MetaFormer,
    MetaFormerConfig(**_S12, mixers=("identity", "identity", "random", "random")),
    papers=("metaformer",),
    params=_S12_PARAMS,
    params_source=(
        f"S18 / official README: 11.9 + 0.2M (frozen); {_OFFICIAL} (randformer_s12): 11,891,712 trainable "
        "+ 235,298 frozen random entries (6·196² + 2·49², buffers here)"
    ),
    summary="RandFormer-S12 (S18): identity mixers in stages 1–2, frozen random token mixing in stages 3–4",
    takes_op=False,
    test_cfg={"image_size": 32},
)
register_variant(
    "poolformerv2_s12",
    MetaFormer,
    MetaFormerConfig(**_S12, mixers=("pool",) * 4),
    papers=("metaformer",),
    params=_S12_PARAMS,
    params_source=f"S18 / official README: 11.9M; {_OFFICIAL} (poolformerv2_s12): 11,891,712",
    summary="PoolFormerV2-S12 (S18): MetaFormer with 3×3 average-pool-minus-input token mixers and StarReLU",
    takes_op=False,
)
register_variant(
    "convformer_s18",
    MetaFormer,
    MetaFormerConfig(**_S18, mixers=("sepconv",) * 4),
    papers=("metaformer",),
    params=26_774_448,
    params_source=f"S18 / official README: 27M; {_OFFICIAL} (convformer_s18): 26,774,448",
    summary="ConvFormer-S18 (S18): separable-conv (pw, StarReLU, 7×7 dw, pw) token mixers, MlpHead",
    test_cfg={"depths": (1, 1, 2, 1)},
)
register_variant(
    "caformer_s18",
    MetaFormer,
    MetaFormerConfig(**_S18, mixers=("sepconv", "sepconv", "attention", "attention")),
    papers=("metaformer",),
    params=26_341_656,
    params_source=f"S18 / official README: 26M; {_OFFICIAL} (caformer_s18): 26,341,656",
    summary="CAFormer-S18 (S18): separable-conv mixers in stages 1–2, self-attention in stages 3–4, MlpHead",
    test_cfg={"depths": (1, 1, 2, 1)},
)
