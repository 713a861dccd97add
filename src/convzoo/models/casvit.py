"""CAS-ViT (S25, Zhang et al., "CAS-ViT: Convolutional Additive Self-attention Vision Transformers for Efficient
Mobile Applications"): CAS-ViT-XS/S/M/T built from the convolutional additive token mixer (CATM)."""

from __future__ import annotations

from dataclasses import dataclass

from torch import Tensor, nn

from convzoo.core.init import drop_path_rates, trunc_normal_init_
from convzoo.layers.drop_path import DropPath
from convzoo.layers.mlp import Mlp
from convzoo.layers.stage import Stage
from convzoo.models.base import ClassifierHead, ConvNet, FeatureInfo
from convzoo.models.registration import make_mixer, modules_inside_ops, register_variant

__all__ = ["CASViTConfig", "CASViT", "AdditiveTokenMixer"]


@dataclass(frozen=True)
class CASViTConfig:
    """One CAS-ViT: four stages of additive blocks, strides 4, 8, 16, 32.

    ``depths``/``dims``: blocks and channels per stage. ``mlp_ratio``: expansion of the 1×1 MLP.
    ``distillation``: the second (distillation) linear head of the official model; at inference the two heads'
    logits are averaged (the released checkpoints and the published counts include it).
    ``drop_path_rate``: stochastic depth rising linearly to this value at the last block.
    """

    depths: tuple[int, ...] = (3, 3, 6, 3)
    dims: tuple[int, ...] = (48, 64, 128, 256)
    mlp_ratio: float = 4.0
    distillation: bool = True
    drop_path_rate: float = 0.0


def _dw(position: str, op: str | None, channels: int, bias: bool = True) -> nn.Module:
    """A depthwise 3×3 conv (``op=`` replaces it; ``op="conv"`` stays depthwise)."""

    def default() -> nn.Module:
        return nn.Conv2d(channels, channels, 3, padding=1, groups=channels, bias=bias)

    options = {"groups": channels} if op == "conv" else {}
    return make_mixer(position, op, default, channels, channels, 3, bias=bias, **options)


class _SpatialOperation(nn.Module):
    """Spatial gate of CATM: ``x · σ(conv1×1_{C→1}(ReLU(BN(dw3×3(x)))))``, one weight per pixel; (N, C, H, W)."""

    def __init__(self, dim: int, dw: nn.Module) -> None:
        super().__init__()
        self.block = nn.Sequential(dw, nn.BatchNorm2d(dim), nn.ReLU(), nn.Conv2d(dim, 1, 1, bias=False), nn.Sigmoid())

    def forward(self, x: Tensor) -> Tensor:
        return x * self.block(x)  # (N, C, H, W) · (N, 1, H, W)


class _ChannelOperation(nn.Module):
    """Channel gate of CATM: ``x · σ(conv1×1_{C→C}(avgpool(x)))``, one weight per channel; (N, C, H, W)."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.block = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Conv2d(dim, dim, 1, bias=False), nn.Sigmoid())

    def forward(self, x: Tensor) -> Tensor:
        return x * self.block(x)  # (N, C, H, W) · (N, C, 1, 1)


class AdditiveTokenMixer(nn.Module):
    """Convolutional additive token mixer (CATM, S25 eq. 5–6) on (N, C, H, W) → (N, C, H, W).

    ``q, k, v = conv1×1(x)`` (no bias); ``Φ(·) = C(S(·))`` (spatial then channel gate, separate weights for q and
    k); ``out = proj(dwc(Φ(q) + Φ(k)) ⊙ v)`` with ``dwc`` and ``proj`` depthwise 3×3 convs: the additive similarity
    replaces the ``q kᵀ`` matrix, so the cost is linear in the number of tokens.
    """

    def __init__(self, dim: int, position: str = "mixer", op: str | None = None) -> None:
        super().__init__()
        self.qkv = nn.Conv2d(dim, 3 * dim, 1, bias=False)
        self.oper_q = nn.Sequential(_SpatialOperation(dim, _dw(f"{position}.oper_q", op, dim)), _ChannelOperation(dim))
        self.oper_k = nn.Sequential(_SpatialOperation(dim, _dw(f"{position}.oper_k", op, dim)), _ChannelOperation(dim))
        self.dwc = _dw(f"{position}.dwc", op, dim)
        self.proj = _dw(f"{position}.proj", op, dim)

    def forward(self, x: Tensor) -> Tensor:
        q, k, v = self.qkv(x).chunk(3, dim=1)  # each (N, C, H, W)
        return self.proj(self.dwc(self.oper_q(q) + self.oper_k(k)) * v)


class _AdditiveBlock(nn.Module):
    """``x + local(x)``, ``x + DropPath(CATM(BN(x)))``, ``x + DropPath(MLP(BN(x)))`` on (N, C, H, W).

    ``local``: conv1×1 → BN → dw3×3 → GELU → conv1×1 (the official "local integration"); MLP: 1×1 convs, GELU.
    """

    def __init__(self, dim: int, mlp_ratio: float, drop_path: float, position: str, op: str | None) -> None:
        super().__init__()
        self.local_perception = nn.Sequential(
            nn.Conv2d(dim, dim, 1),
            nn.BatchNorm2d(dim),
            _dw(f"{position}.local", op, dim),
            nn.GELU(),
            nn.Conv2d(dim, dim, 1),
        )
        self.norm1 = nn.BatchNorm2d(dim)
        self.attn = AdditiveTokenMixer(dim, f"{position}.attn", op)
        self.norm2 = nn.BatchNorm2d(dim)
        self.mlp = Mlp(dim, int(dim * mlp_ratio), dim=2)
        self.drop_path = DropPath(drop_path)

    def forward(self, x: Tensor) -> Tensor:
        x = x + self.local_perception(x)
        x = x + self.drop_path(self.attn(self.norm1(x)))
        return x + self.drop_path(self.mlp(self.norm2(x)))


class _DistilledHead(nn.Module):
    """Pool → BN (on the map) → two linear heads; logits are their mean (the official inference output)."""

    def __init__(self, dim: int, num_classes: int, distillation: bool) -> None:
        super().__init__()
        self.norm = nn.BatchNorm2d(dim)
        self.head = ClassifierHead(dim, num_classes)
        self.dist = ClassifierHead(dim, num_classes) if distillation else None

    def reset(self, num_classes: int) -> None:
        self.head.reset(num_classes)
        if self.dist is not None:
            self.dist.reset(num_classes)

    def forward(self, x: Tensor, pre_logits: bool = False) -> Tensor:
        x = self.norm(x)  # (N, C, H, W)
        if pre_logits or self.dist is None:
            return self.head(x, pre_logits=pre_logits)
        return (self.head(x) + self.dist(x)) / 2


class CASViT(ConvNet):
    """CAS-ViT (S25), after Tianfang-Zhang/CAS-ViT ``classification/model/rcvit.py`` (the "RCViT" classes).

    Stem: conv 3×3/2 (C/2) → BN → ReLU → conv 3×3/2 (C) → BN → ReLU. Between stages: conv 3×3/2 → BN. Blocks:
    :class:`_AdditiveBlock` with the :class:`AdditiveTokenMixer`. Head: BN on the last map, global average pool,
    Linear, plus the distillation Linear whose logits are averaged with the first (``distillation=True``, as
    released). Input (N, 3, H, W) → logits (N, classes).

    ``op=`` replaces every depthwise 3×3 conv of the blocks (local integration, the spatial gates, ``dwc``,
    ``proj``; ``op="conv"`` keeps them depthwise). Departure: the official code always returns the mean of both
    heads at eval and the pair while training; here both heads are averaged in train and eval mode.
    """

    def __init__(self, cfg: CASViTConfig, *, num_classes: int = 1000, in_chans: int = 3, op: str | None = None):
        super().__init__()
        if len(cfg.depths) != len(cfg.dims) or not cfg.depths:
            raise ValueError(f"casvit: depths {cfg.depths} and dims {cfg.dims} must be non-empty and of equal length")
        d0 = cfg.dims[0]
        self.stem = nn.Sequential(
            nn.Conv2d(in_chans, d0 // 2, 3, 2, 1),
            nn.BatchNorm2d(d0 // 2),
            nn.ReLU(),
            nn.Conv2d(d0 // 2, d0, 3, 2, 1),
            nn.BatchNorm2d(d0),
            nn.ReLU(),
        )
        rates = drop_path_rates(cfg.drop_path_rate, sum(cfg.depths))
        stages, self.feature_info = [], []
        index, reduction = 0, 4
        for i, (depth, dim) in enumerate(zip(cfg.depths, cfg.dims, strict=True)):
            downsample = None
            if i > 0:
                downsample = nn.Sequential(nn.Conv2d(cfg.dims[i - 1], dim, 3, 2, 1), nn.BatchNorm2d(dim))
                reduction *= 2
            blocks = [
                _AdditiveBlock(dim, cfg.mlp_ratio, rates[index + j], f"stages.{i}.blocks.{j}", op) for j in range(depth)
            ]
            index += depth
            stages.append(Stage(downsample, blocks))
            self.feature_info.append(FeatureInfo(f"stages.{i}", dim, reduction))
        self.stages = nn.ModuleList(stages)
        self.head = _DistilledHead(cfg.dims[-1], num_classes, cfg.distillation)
        trunc_normal_init_(self, skip=modules_inside_ops(self) | _convs(self))


def _convs(model: nn.Module) -> set[int]:
    """The official code initialises only the Linear layers (truncated normal); convs keep PyTorch's default."""
    return {id(m) for m in model.modules() if isinstance(m, nn.Conv2d)}


_OFFICIAL = "Tianfang-Zhang/CAS-ViT MODEL_ZOO.md"
_SIZES = {
    # name: (depths, dims, published count in M (official MODEL_ZOO.md, = S25 Table 1))
    "xs": ((2, 2, 4, 2), (48, 56, 112, 220), 3.20),
    "s": ((3, 3, 6, 3), (48, 64, 128, 256), 5.76),
    "m": ((3, 3, 6, 3), (64, 96, 192, 384), 12.42),
    "t": ((3, 3, 6, 3), (96, 128, 256, 512), 21.76),
}
for _size, (_depths, _dims, _params) in _SIZES.items():
    register_variant(
        f"casvit_{_size}",
        CASViT,
        CASViTConfig(depths=_depths, dims=_dims),
        papers=("cas-vit",),
        params=round(_params * 1e6),
        params_source=f"{_OFFICIAL} (rcvit_{_size}, with its distillation head): {_params}M",
        summary=f"CAS-ViT-{_size.upper()} (S25): convolutional additive token mixers, depths {_depths}, widths {_dims}",
        test_cfg={"depths": (1, 1, 1, 1)},
    )
