"""ParCNetV2 (S109, Xu et al., "ParCNetV2: Oversized Kernel with Enhanced Attention").

A MetaFormer-style four-stage network whose token mixer is the oversized depthwise convolution inside a gate
(:class:`convzoo.ops.oversized.Oversized`, the official ``ParC_V2``) and whose channel mixer is the bifurcate gate
unit (:class:`convzoo.ops.oversized.BifurcateGateUnit`, the official ``BGU``, ratio 5). Layout after the official
XuRuihan/ParCNetV2 ``models/parcnetv2.py``:

- stem: conv 7×7 stride 4 (padding 2, bias) → norm; stages 2-4 open with norm → conv 3×3 stride 2 (padding 1, bias);
- block: ``x = s₁·x + ParC_V2(norm₁(x))``, ``x = s₂·x + BGU(norm₂(x))``, with the learnable res-scales ``s`` (init 1)
  in stages 3-4 only and no layer scale;
- head: global average pool → LayerNorm (eps 1e-6, with bias) → Linear.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from convzoo.core.init import drop_path_rates, trunc_normal_init_
from convzoo.core.validate import is_int
from convzoo.layers.metaformer_block import MetaFormerBlock
from convzoo.layers.stage import Stage
from convzoo.models.base import ClassifierHead, ConvNet, FeatureInfo
from convzoo.models.registration import make_mixer, modules_inside_ops, register_variant
from convzoo.ops.oversized import BifurcateGateUnit, Oversized

__all__ = ["ParCNetV2Config", "ParCNetV2", "CentredL2Norm"]


@dataclass(frozen=True)
class ParCNetV2Config:
    """One ParCNetV2 network.

    ``depths`` / ``dims``: blocks and channels per stage; ``kernel_sizes``: the oversized kernel K of each stage,
    ``2S − 1`` for the side S the stage sees at 224² (111, 55, 27, 13); ``local_kernel_size``: the depthwise conv
    beside the oversized one (7); ``expansion_ratio``: the token mixer's pointwise expansion (2, half of it gates);
    ``mlp_ratio``: the BGU's expansion (5, half of it gates); ``res_scale``: per stage, whether both shortcuts carry
    a learnable per-channel scale; ``interpolate``: resize the oversized kernels to ``2S − 1`` for every input (the
    official option; off by default, as in the official models); ``drop_path_rate``: stochastic depth rising
    linearly from 0; ``head_drop``: dropout before the classifier.
    """

    depths: tuple[int, ...] = (3, 3, 12, 3)
    dims: tuple[int, ...] = (64, 128, 320, 512)
    kernel_sizes: tuple[int, ...] = (111, 55, 27, 13)
    local_kernel_size: int = 7
    expansion_ratio: float = 2.0
    mlp_ratio: float = 5.0
    res_scale: tuple[bool, ...] = (False, False, True, True)
    interpolate: bool = False
    drop_path_rate: float = 0.0
    head_drop: float = 0.0


class CentredL2Norm(nn.Module):
    """The official ParCNetV2 ``LayerNormGeneral`` (bias-free): each pixel's channels centred, then divided by
    their L2 norm, then scaled per channel.

    ``(N, C, *S) → (N, C, *S)``: ``y = w ⊙ (x − mean_C x) / max(‖x − mean_C x‖₂, eps)``. This is LayerNorm
    divided by √C (the official code replaces LayerNorm's ``√(mean c² + eps)`` by ``max(‖c‖₂, eps)``), kept here
    because the released models are trained with it.
    """

    def __init__(self, channels: int, eps: float = 1e-6) -> None:
        super().__init__()
        self.channels, self.eps = channels, eps
        self.weight = nn.Parameter(torch.ones(channels))

    def forward(self, x: Tensor) -> Tensor:
        if x.dim() < 2 or x.shape[1] != self.channels:
            raise ValueError(f"parcnetv2 norm: expected (N, {self.channels}, *S), got shape {tuple(x.shape)}")
        centred = x - x.mean(dim=1, keepdim=True)  # (N, C, *S)
        length = centred.norm(p=2, dim=1, keepdim=True).clamp_min(self.eps)  # (N, 1, *S)
        return centred / length * self.weight.view(-1, *([1] * (x.dim() - 2)))

    def extra_repr(self) -> str:
        return f"{self.channels}, eps={self.eps}, bias=False"


def _trunc_normal_parameters_(module: nn.Module) -> None:
    """The official initialisation of every conv/linear inside ``module``: weights N(0, 0.02²) truncated, biases 0."""
    for name, parameter in module.named_parameters():
        if name.endswith("bias"):
            nn.init.zeros_(parameter)
        else:
            nn.init.trunc_normal_(parameter, std=0.02)


def _block(
    cfg: ParCNetV2Config,
    dim: int,
    kernel_size: int,
    res_scale: bool,
    drop_path: float,
    position: str,
    op: str | None,
) -> MetaFormerBlock:
    """``x = s₁·x + DropPath(ParC_V2(norm₁(x)))``, ``x = s₂·x + DropPath(BGU(norm₂(x)))`` on (N, C, H, W)."""

    def default() -> nn.Module:
        mixer = Oversized(
            dim,
            dim,
            kernel_size,
            bias=False,
            local_kernel_size=cfg.local_kernel_size,
            expansion_ratio=cfg.expansion_ratio,
            interpolate=cfg.interpolate,
        )
        _trunc_normal_parameters_(mixer)
        return mixer

    mlp = BifurcateGateUnit(dim, cfg.mlp_ratio, bias=False)
    _trunc_normal_parameters_(mlp)
    return MetaFormerBlock(
        CentredL2Norm(dim),
        make_mixer(f"{position}.token_mixer", op, default, dim, dim, cfg.local_kernel_size),
        CentredL2Norm(dim),
        mlp,
        channels=dim,
        res_scale=res_scale,
        drop_path=drop_path,
    )


class _Downsample(nn.Module):
    """conv (k, stride, padding, bias) with the bias-free norm before (stages 2-4) or after it (the stem)."""

    def __init__(self, c_in: int, c_out: int, kernel: int, stride: int, padding: int, pre_norm: bool) -> None:
        super().__init__()
        self.pre_norm = CentredL2Norm(c_in) if pre_norm else nn.Identity()
        self.conv = nn.Conv2d(c_in, c_out, kernel, stride, padding)
        self.post_norm = nn.Identity() if pre_norm else CentredL2Norm(c_out)

    def forward(self, x: Tensor) -> Tensor:
        return self.post_norm(self.conv(self.pre_norm(x)))


class ParCNetV2(ConvNet):
    """ParCNetV2 (S109, ParCNetV2: Oversized Kernel with Enhanced Attention), after XuRuihan/ParCNetV2.

    Every conv and linear weight (the oversized and local depthwise kernels and the BGU included) is truncated
    normal with std 0.02 and zero bias, as the official ``_init_weights``. The blocks run channels-first (the official
    code permutes to channels-last; the arithmetic is the same).

    ``op=`` replaces each block's whole token mixer (itself the registered operator ``oversized``) by
    ``create_op(op, C, C, local_kernel_size)``: an oversized kernel of 111 handed to another operator would build a
    dense 111×111 kernel.
    """

    def __init__(self, cfg: ParCNetV2Config, *, num_classes: int = 1000, in_chans: int = 3, op: str | None = None):
        super().__init__()
        stages = len(cfg.depths)
        if not stages:
            raise ValueError("parcnetv2: depths must be non-empty, got ()")
        for what in ("dims", "kernel_sizes", "res_scale"):
            if len(getattr(cfg, what)) != stages:
                raise ValueError(f"parcnetv2: {what} {getattr(cfg, what)} must have one entry per stage ({stages})")
        bad = [k for k in cfg.kernel_sizes if not is_int(k) or k < 1 or k % 2 == 0]
        if bad:
            raise ValueError(f"parcnetv2: kernel_sizes must be positive odd ints, got {cfg.kernel_sizes}")
        dims = cfg.dims
        self.stem = _Downsample(in_chans, dims[0], 7, 4, 2, pre_norm=False)
        rates = drop_path_rates(cfg.drop_path_rate, sum(cfg.depths))
        stage_list, self.feature_info = [], []
        index, reduction = 0, 4
        for i, (depth, dim, k) in enumerate(zip(cfg.depths, dims, cfg.kernel_sizes, strict=True)):
            downsample = None
            if i > 0:
                downsample = _Downsample(dims[i - 1], dim, 3, 2, 1, pre_norm=True)
                reduction *= 2
            blocks = [
                _block(cfg, dim, k, cfg.res_scale[i], rates[index + j], f"stages.{i}.blocks.{j}", op)
                for j in range(depth)
            ]
            index += depth
            stage_list.append(Stage(downsample, blocks))
            self.feature_info.append(FeatureInfo(f"stages.{i}", dim, reduction))
        self.stages = nn.ModuleList(stage_list)
        self.head = ClassifierHead(dims[-1], num_classes, norm=nn.LayerNorm(dims[-1], eps=1e-6), drop=cfg.head_drop)
        # the stem, the downsampling convs and the classifier; operators were initialised where they were built
        trunc_normal_init_(self, skip=modules_inside_ops(self))


register_variant(
    "parcnetv2_tiny",
    ParCNetV2,
    ParCNetV2Config(),
    papers=("parcnetv2",),
    params=24_935_144,
    params_source="XuRuihan/ParCNetV2 README, ImageNet-1K table (S109): ParCNetV2-T 25M, 4.3 GMACs; "
    "exact count of the official parcnetv2_tiny config (models/parcnetv2.py: depths 3-3-12-3, "
    "dims 64-128-320-512, K 111-55-27-13, BGU ratio 5), derived by hand in tests/models/test_parcnetv2.py",
    summary="ParCNetV2-T (S109, ParCNetV2: oversized kernel with enhanced attention): depths (3, 3, 12, 3)",
    test_cfg={"depths": (1, 1, 1, 1)},
)
