"""ConvNeXt (S67, Liu et al., "A ConvNet for the 2020s"): ConvNeXt-T/S/B/L.

A patchify stem (4×4/4 conv + LayerNorm), four stages of inverted-bottleneck blocks
(7×7 depthwise → LayerNorm → 1×1 (4× expansion) → GELU → 1×1 → layer scale → DropPath, residual),
LayerNorm + 2×2/2 conv between stages, and a head of global average pool → LayerNorm → Linear.
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import nn

from convzoo.core.init import drop_path_rates, trunc_normal_init_
from convzoo.core.validate import check_odd
from convzoo.layers.metanext_block import MetaNeXtBlock
from convzoo.layers.mlp import Mlp
from convzoo.layers.norm import LayerNormChannelsFirst
from convzoo.layers.stage import Stage
from convzoo.models.base import ClassifierHead, ConvNet, FeatureInfo
from convzoo.models.registration import make_mixer, modules_inside_ops, register_variant

__all__ = ["ConvNeXtConfig", "ConvNeXt"]


@dataclass(frozen=True)
class ConvNeXtConfig:
    """One ConvNeXt network.

    ``depths``/``dims``: blocks and channels per stage. ``kernel_size``: the depthwise conv of every block
    (7 in the paper; also the kernel handed to ``op=``). ``mlp_ratio``: expansion of the 1×1 MLP.
    ``layer_scale_init``: initial γ (0 disables layer scale). ``drop_path_rate``: stochastic depth, rising
    linearly from 0 at the first block to this value at the last. ``drop_rate``: dropout before the classifier.
    ``head_init_scale``: factor on the initial classifier weights and bias (1.0 for ImageNet-1k training).
    """

    depths: tuple[int, ...] = (3, 3, 9, 3)
    dims: tuple[int, ...] = (96, 192, 384, 768)
    kernel_size: int = 7
    mlp_ratio: int = 4
    layer_scale_init: float = 1e-6
    drop_path_rate: float = 0.0
    drop_rate: float = 0.0
    head_init_scale: float = 1.0


def _block(cfg: ConvNeXtConfig, dim: int, drop_path: float, position: str, op: str | None) -> MetaNeXtBlock:
    """x + DropPath(γ · Linear(GELU(Linear(LN(DWConv7×7(x)))))), channels-last after the depthwise conv (which
    ``op=`` replaces)."""
    k = cfg.kernel_size

    def default() -> nn.Module:
        return nn.Conv2d(dim, dim, k, padding=k // 2, groups=dim)

    return MetaNeXtBlock(
        make_mixer(f"{position}.mixer", op, default, dim, dim, k, bias=True),
        nn.LayerNorm(dim, eps=1e-6),
        Mlp(dim, cfg.mlp_ratio * dim),
        channels=dim,
        layer_scale_init=cfg.layer_scale_init,
        drop_path=drop_path,
        channels_last=True,
    )


class ConvNeXt(ConvNet):
    """ConvNeXt (S67, "A ConvNet for the 2020s"): patchify stem → 4 stages of ConvNeXt blocks → pool, LN, linear.

    Follows the official facebookresearch/ConvNeXt code (and torchvision): the block's LayerNorm and 1×1s run
    channels-last as ``nn.LayerNorm``/``nn.Linear``; stem and downsampling norms are channels-first LayerNorms;
    every norm has eps 1e-6; conv and linear weights are truncated-normal (std 0.02) with zero biases.

    ``op=`` builds every block's depthwise ``k×k`` conv as ``create_op(op, C, C, kernel_size)`` (C → C, the
    family's kernel, 7 by default, with a bias as in the original). An operator that cannot take a C → C
    ``k×k`` position (e.g. ``pix``, which only replaces 1×1 convs) raises ``ValueError`` naming the block.
    """

    def __init__(self, cfg: ConvNeXtConfig, *, num_classes: int = 1000, in_chans: int = 3, op: str | None = None):
        super().__init__()
        if len(cfg.depths) != len(cfg.dims) or not cfg.depths:
            raise ValueError(f"convnext: depths {cfg.depths} and dims {cfg.dims} must be non-empty and of equal length")
        check_odd(cfg.kernel_size, "kernel_size", "convnext")
        dims = cfg.dims
        self.stem = nn.Sequential(nn.Conv2d(in_chans, dims[0], 4, stride=4), LayerNormChannelsFirst(dims[0]))
        rates = drop_path_rates(cfg.drop_path_rate, sum(cfg.depths))
        stages, self.feature_info = [], []
        index, reduction = 0, 4
        for i, (depth, dim) in enumerate(zip(cfg.depths, dims, strict=True)):
            downsample: nn.Module = nn.Identity()
            if i > 0:
                downsample = nn.Sequential(LayerNormChannelsFirst(dims[i - 1]), nn.Conv2d(dims[i - 1], dim, 2, 2))
                reduction *= 2
            blocks = [_block(cfg, dim, rates[index + j], f"stages.{i}.blocks.{j}", op) for j in range(depth)]
            index += depth
            stages.append(Stage(downsample, blocks))
            self.feature_info.append(FeatureInfo(f"stages.{i}", dim, reduction))
        self.stages = nn.ModuleList(stages)
        self.head = ClassifierHead(dims[-1], num_classes, norm=nn.LayerNorm(dims[-1], eps=1e-6), drop=cfg.drop_rate)
        self._init_weights(cfg.head_init_scale)

    def _init_weights(self, head_init_scale: float) -> None:
        # a replacement operator keeps its own initialisation
        trunc_normal_init_(self, skip=modules_inside_ops(self), head_init_scale=head_init_scale)


_SIZES = {
    # name: (depths, dims, torchvision ImageNet-1k count, S67 Table 1 count)
    "tiny": ((3, 3, 9, 3), (96, 192, 384, 768), 28_589_128, "28M"),
    "small": ((3, 3, 27, 3), (96, 192, 384, 768), 50_223_688, "50M"),
    "base": ((3, 3, 27, 3), (128, 256, 512, 1024), 88_591_464, "89M"),
    "large": ((3, 3, 27, 3), (192, 384, 768, 1536), 197_767_336, "198M"),
}
for _size, (_depths, _dims, _params, _paper) in _SIZES.items():
    register_variant(
        f"convnext_{_size}",
        ConvNeXt,
        ConvNeXtConfig(depths=_depths, dims=_dims),
        papers=("convnext",),
        params=_params,
        params_source=f"torchvision ImageNet weights (convnext_{_size}): {_params:,}; S67 Table 1: {_paper}",
        summary=f"ConvNeXt-{_size[0].upper()} (S67, A ConvNet for the 2020s): depths {_depths}, widths {_dims}",
        test_cfg={"depths": (1, 1, 1, 1)},
    )
