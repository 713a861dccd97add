"""Convolutional Set Transformer (S70, Chinello & Boracchi, "Convolutional Set Transformer"): CST-15 on sets of
images, built from SetConv2D blocks (a convolution whose bias is set by self-attention across the set)."""

from __future__ import annotations

from dataclasses import dataclass

from torch import Tensor, nn

from convzoo.core.validate import check_int
from convzoo.layers.attention import MultiHeadAttention
from convzoo.models.base import ClassifierHead, ConvNet, FeatureInfo
from convzoo.models.registration import make_mixer, modules_inside_ops, register_variant

__all__ = ["CSTConfig", "ConvSetTransformer", "SetConv2d"]


@dataclass(frozen=True)
class CSTConfig:
    """One CST: VGG-style blocks of 3×3 convs (ReLU6), each block ending in a 2×2 max-pool.

    ``widths``/``depths``: channels and convs per block; blocks from ``first_set_block`` (0-based) on use SetConv2D.
    ``head_dim``: width of the set attention heads (heads = max(1, C // head_dim), head width min(C, head_dim)).
    ``set_size``: how a 4-d (B, 3, H, W) input splits into sets: consecutive groups of ``set_size`` images; ``None``
    takes the whole batch as one set. A 5-d (N, S, 3, H, W) input is always N sets of S images.
    """

    widths: tuple[int, ...] = (64, 128, 256, 512, 512)
    depths: tuple[int, ...] = (2, 2, 2, 4, 4)
    first_set_block: int = 2
    head_dim: int = 64
    set_size: int | None = None


class SetConv2d(nn.Module):
    """SetConv2D (S70) on a set of maps (N, S, C_in, H, W) → (N, S, C_out, H', W').

    ``y = conv(x)`` per image; each image's channel descriptor ``g = GAP(y)`` (N, S, C_out) attends to the other
    images' descriptors with multi-head self-attention (no positional encoding), and the result is added as a
    per-image, per-channel bias: ``out = act(y + MHSA(g))``. Permuting the images of a set permutes the output.
    """

    def __init__(self, conv: nn.Module, channels: int, head_dim: int, act: nn.Module) -> None:
        super().__init__()
        self.conv = conv
        heads = max(1, channels // head_dim)
        self.mhsa = MultiHeadAttention(channels, heads, head_dim=min(channels, head_dim))
        self.act = act

    def forward(self, x: Tensor) -> Tensor:
        n, s = x.shape[:2]
        y = self.conv(x.flatten(0, 1))  # (N·S, C, H', W')
        g = self.mhsa(y.mean((2, 3)).reshape(n, s, -1))  # (N, S, C): context of each image within its set
        y = y + g.reshape(n * s, -1, 1, 1)  # dynamic bias per image and channel
        return self.act(y).reshape(n, s, *y.shape[1:])  # (N, S, C, H', W')


class _PerImage(nn.Module):
    """Applies ``module`` to every image of (N, S, C, H, W) independently."""

    def __init__(self, module: nn.Module) -> None:
        super().__init__()
        self.module = module

    def forward(self, x: Tensor) -> Tensor:
        y = self.module(x.flatten(0, 1))  # (N·S, C', H', W')
        return y.reshape(*x.shape[:2], *y.shape[1:])


class ConvSetTransformer(ConvNet):
    """Convolutional Set Transformer (S70), CST-15 as in chinefed/convolutional-set-transformer (``cstmodels``):
    blocks 1–2 plain 3×3 convs (64, 128 channels), blocks 3–5 SetConv2D (256, 512, 512), all ReLU6, each block
    followed by 2×2 max-pooling; global average pool and a Linear classifier per image.

    Input: (N, S, 3, H, W) sets → logits (N, S, classes), one prediction per image in the context of its set; or
    (B, 3, H, W) split into sets by ``set_size`` → (B, classes). Stages: the five blocks (strides 2 … 32); stage
    outputs keep the input's layout. ``op=`` replaces every 3×3 conv. Departures: inputs are expected normalised
    (the Keras model normalises raw 0–255 pixels inside); weights are Glorot-uniform with zero biases as Keras's
    defaults; the set attention computes q, k, v with one fused Linear (same parameter count as Keras's three).
    """

    def __init__(self, cfg: CSTConfig, *, num_classes: int = 1000, in_chans: int = 3, op: str | None = None):
        super().__init__()
        if len(cfg.widths) != len(cfg.depths) or not cfg.widths:
            raise ValueError(f"cst: widths {cfg.widths} and depths {cfg.depths} must be non-empty, of equal length")
        if cfg.set_size is not None:
            check_int(cfg.set_size, "set_size", "cst")
        self.set_size = cfg.set_size
        self.stem = nn.Identity()
        stages, self.feature_info = [], []
        in_ch, reduction = in_chans, 1
        for i, (width, depth) in enumerate(zip(cfg.widths, cfg.depths, strict=True)):
            layers: list[nn.Module] = []
            for j in range(depth):
                conv = _conv(f"stages.{i}.{j}", op, in_ch, width)
                if i >= cfg.first_set_block:
                    layers.append(SetConv2d(conv, width, cfg.head_dim, nn.ReLU6()))
                else:
                    layers.append(_PerImage(nn.Sequential(conv, nn.ReLU6())))
                in_ch = width
            layers.append(_PerImage(nn.MaxPool2d(2)))
            reduction *= 2
            stages.append(nn.Sequential(*layers))
            self.feature_info.append(FeatureInfo(f"stages.{i}", width, reduction))
        self.stages = nn.ModuleList(stages)
        self.head = ClassifierHead(in_ch, num_classes)
        inside = modules_inside_ops(self)
        for m in self.modules():
            if isinstance(m, nn.Conv2d | nn.Linear) and id(m) not in inside:
                nn.init.xavier_uniform_(m.weight)
                nn.init.zeros_(m.bias)

    def _as_sets(self, x: Tensor) -> Tensor:
        if x.dim() == 5:
            return x  # (N, S, C, H, W)
        if x.dim() != 4:
            raise ValueError(f"cst: expected (N, S, C, H, W) sets or (B, C, H, W) images, got {tuple(x.shape)}")
        s = x.shape[0] if self.set_size is None else self.set_size
        if x.shape[0] % s:
            raise ValueError(f"cst: a batch of {x.shape[0]} images does not split into sets of set_size {s}")
        return x.reshape(-1, s, *x.shape[1:])  # (B / S, S, C, H, W)

    def forward_stages(self, x: Tensor) -> list[Tensor]:
        sets = self._as_sets(x)
        outputs = []
        for stage in self.stages:
            sets = stage(sets)  # (N, S, C, H, W)
            outputs.append(sets if x.dim() == 5 else sets.flatten(0, 1))
        return outputs

    def forward_head(self, x: Tensor, pre_logits: bool = False) -> Tensor:
        if x.dim() == 5:  # (N, S, C, h, w): one prediction per image
            y = self.head(x.flatten(0, 1), pre_logits=pre_logits)
            return y.reshape(*x.shape[:2], -1)
        return self.head(x, pre_logits=pre_logits)


def _conv(position: str, op: str | None, in_ch: int, out_ch: int) -> nn.Module:
    def default() -> nn.Module:
        return nn.Conv2d(in_ch, out_ch, 3, padding=1)

    return make_mixer(position, op, default, in_ch, out_ch, 3, bias=True)


_BACKBONE = 27_775_552
register_variant(
    "cst15",
    ConvSetTransformer,
    CSTConfig(),
    papers=("conv-set-transformer",),
    params=_BACKBONE + 512 * 1000 + 1000,
    params_source=(
        "chinefed/convolutional-set-transformer (cstmodels CST15; the cst15_transfer_learning notebook's summary "
        f"counts the backbone without its head at {_BACKBONE:,}) + the 512 → 1000 ImageNet classifier (513,000)"
    ),
    summary="CST-15 (S70): VGG-style convs, SetConv2D blocks (conv + set self-attention bias) from block 3 on",
    test_cfg={"depths": (1, 1, 1, 1, 1), "widths": (16, 16, 32, 32, 64)},
)
