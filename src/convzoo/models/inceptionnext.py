"""InceptionNeXt (S40, Yu et al., "InceptionNeXt: When Inception Meets ConvNeXt"): InceptionNeXt-T/S/B.

A MetaNeXt network: ConvNeXt's macro design with BatchNorm, whose token mixer is the Inception depthwise
convolution (``inception_dw``: identity, 3×3, 1×11 and 11×1 depthwise branches on channel groups).
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import nn

from convzoo.core.init import drop_path_rates, trunc_normal_init_
from convzoo.layers.metanext_block import MetaNeXtBlock
from convzoo.layers.mlp import Mlp
from convzoo.layers.stage import Stage
from convzoo.models.base import ClassifierHead, ConvNet, FeatureInfo
from convzoo.models.registration import make_mixer, modules_inside_ops, register_variant
from convzoo.ops.base import create_op
from convzoo.ops.inception_dw import InceptionDW

__all__ = ["InceptionNeXtConfig", "InceptionNeXt"]


@dataclass(frozen=True)
class InceptionNeXtConfig:
    """One InceptionNeXt (MetaNeXt) network.

    ``depths``/``dims``: blocks and channels per stage; ``mlp_ratios``: the ConvMLP expansion per stage.
    ``square_kernel_size``, ``band_kernel_size``, ``branch_ratio``: the ``inception_dw`` mixer (3, 11, 1/8);
    ``square_kernel_size`` is also the kernel handed to ``op=``. ``head_mlp_ratio``: hidden width of the MLP head.
    ``layer_scale_init``: initial γ (0 disables it). ``drop_path_rate``: stochastic depth, linear from 0 to
    this value over all blocks. ``drop_rate``: dropout before the classifier.
    """

    depths: tuple[int, ...] = (3, 3, 9, 3)
    dims: tuple[int, ...] = (96, 192, 384, 768)
    mlp_ratios: tuple[float, ...] = (4, 4, 4, 3)
    square_kernel_size: int = 3
    band_kernel_size: int = 11
    branch_ratio: float = 0.125
    head_mlp_ratio: float = 3
    layer_scale_init: float = 1e-6
    drop_path_rate: float = 0.0
    drop_rate: float = 0.0


def _block(
    cfg: InceptionNeXtConfig, dim: int, mlp_ratio: float, drop_path: float, position: str, op: str | None
) -> MetaNeXtBlock:
    """MetaNeXt block: x + DropPath(γ · ConvMLP(BN(mixer(x)))); the ``inception_dw`` mixer is what ``op=`` replaces."""
    k = cfg.square_kernel_size
    bands = {"band_kernel_size": cfg.band_kernel_size, "branch_ratio": cfg.branch_ratio}

    def default() -> nn.Module:
        return create_op("inception_dw", dim, dim, k, bias=True, **bands)

    options = bands if op == "inception_dw" else {}
    return MetaNeXtBlock(
        make_mixer(f"{position}.mixer", op, default, dim, dim, k, bias=True, **options),
        nn.BatchNorm2d(dim),
        Mlp(dim, int(mlp_ratio * dim), dim=2),
        channels=dim,
        layer_scale_init=cfg.layer_scale_init,
        drop_path=drop_path,
    )


class InceptionNeXt(ConvNet):
    """InceptionNeXt (S40, "InceptionNeXt: When Inception Meets ConvNeXt"): MetaNeXt with Inception DW mixers.

    Follows the official sail-sg/inceptionnext ``models/inceptionnext.py``: stem 4×4/4 conv + BN; stage 1 has
    no downsampling, later stages start with BN + 2×2/2 conv; blocks are mixer → BN → ConvMLP (1×1, GELU,
    1×1; ratios (4, 4, 4, 3)) → layer scale (1e-6) → DropPath, residual; the head is the official ``MlpHead``:
    global average pool → Linear(C, 3C) → GELU → LayerNorm(eps 1e-6) → dropout → Linear. Conv and linear
    weights, including the Inception DW branches, are truncated-normal (std 0.02) with zero biases.

    ``op=`` builds every block's mixer as ``create_op(op, C, C, square_kernel_size)`` (C → C, kernel 3, with
    bias); ``op="inception_dw"`` also receives the config's band kernel and branch ratio. An operator that
    cannot stand there (e.g. ``dilated_reparam``, whose kernels start at 5; raise ``square_kernel_size``)
    raises ``ValueError`` naming the block.
    """

    def __init__(self, cfg: InceptionNeXtConfig, *, num_classes: int = 1000, in_chans: int = 3, op: str | None = None):
        super().__init__()
        if not cfg.depths or not len(cfg.depths) == len(cfg.dims) == len(cfg.mlp_ratios):
            raise ValueError(
                f"inceptionnext: depths {cfg.depths}, dims {cfg.dims} and mlp_ratios {cfg.mlp_ratios} "
                "must be non-empty and of equal length"
            )
        dims = cfg.dims
        self.stem = nn.Sequential(nn.Conv2d(in_chans, dims[0], 4, stride=4), nn.BatchNorm2d(dims[0]))
        rates = drop_path_rates(cfg.drop_path_rate, sum(cfg.depths))
        stages, self.feature_info = [], []
        index, reduction = 0, 4
        for i, (depth, dim, ratio) in enumerate(zip(cfg.depths, dims, cfg.mlp_ratios, strict=True)):
            downsample: nn.Module = nn.Identity()
            if i > 0:
                downsample = nn.Sequential(nn.BatchNorm2d(dims[i - 1]), nn.Conv2d(dims[i - 1], dim, 2, 2))
                reduction *= 2
            blocks = [_block(cfg, dim, ratio, rates[index + j], f"stages.{i}.blocks.{j}", op) for j in range(depth)]
            index += depth
            stages.append(Stage(downsample, blocks))
            self.feature_info.append(FeatureInfo(f"stages.{i}", dim, reduction))
        self.stages = nn.ModuleList(stages)
        self.head = ClassifierHead(
            dims[-1], num_classes, hidden=int(cfg.head_mlp_ratio * dims[-1]), act=nn.GELU, drop=cfg.drop_rate
        )
        self.head.hidden[2].eps = 1e-6  # the official MlpHead's LayerNorm eps
        self._init_weights()

    def _init_weights(self) -> None:
        # a replacement operator keeps its own initialisation; the default Inception DW is initialised as official
        trunc_normal_init_(self, skip=modules_inside_ops(self))
        for m in self.modules():
            if isinstance(m, InceptionDW):
                for weight in m.branch_weights:
                    nn.init.trunc_normal_(weight, std=0.02)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)


_OFFICIAL = "official sail-sg/inceptionnext models/inceptionnext.py config"
for _size, _depths, _dims, _params, _paper in (
    ("tiny", (3, 3, 9, 3), (96, 192, 384, 768), 28_055_680, "28M"),
    ("small", (3, 3, 27, 3), (96, 192, 384, 768), 49_374_016, "49M"),
    ("base", (3, 3, 27, 3), (128, 256, 512, 1024), 86_672_136, "87M"),
):
    register_variant(
        f"inceptionnext_{_size}",
        InceptionNeXt,
        InceptionNeXtConfig(depths=_depths, dims=_dims),
        papers=("inceptionnext",),
        params=_params,
        params_source=f"S40 ImageNet table and official README: {_paper}; {_OFFICIAL} counted: {_params:,}",
        summary=f"InceptionNeXt-{_size[0].upper()} (S40): MetaNeXt with Inception DW mixers, depths {_depths}",
        test_cfg={"depths": (1, 1, 1, 1)},
    )
