"""Continuous-kernel CNNs: FlexNet (S27) and the CCNN (S117), N-d, without any downsampling.

Both keep the input resolution throughout: every spatial mixer is a continuous-kernel convolution
(:mod:`convzoo.ops.continuous`) whose kernel spans the whole ``kernel_size`` grid (33 for CIFAR), so long-range
dependencies are modelled at every layer instead of by pooling. The head is global average pooling followed by
a linear layer (the official ``Linear{d}d`` 1×1 conv on the pooled vector).
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass

from torch import nn

from convzoo.layers.residual import ResidualBlock
from convzoo.models.base import ClassifierHead, ConvNet, FeatureInfo
from convzoo.models.registration import make_mixer, register_variant
from convzoo.ops.continuous import FlexConv

__all__ = ["FlexNetConfig", "FlexNet", "CCNNConfig", "CCNN"]

_BN = {1: nn.BatchNorm1d, 2: nn.BatchNorm2d, 3: nn.BatchNorm3d}
_DROPOUT = {1: nn.Dropout1d, 2: nn.Dropout2d, 3: nn.Dropout3d}


def _flexconv(cfg, in_channels: int, out_channels: int, separable: bool) -> FlexConv:
    return FlexConv(
        in_channels,
        out_channels,
        cfg.kernel_size,
        dim=cfg.dim,
        kernel_net="magnet",
        hidden=cfg.kernel_hidden,
        no_layers=cfg.kernel_layers,
        omega_0=cfg.omega_0,
        separable=separable,
        mask_init=cfg.mask_init,
    )


# ---------------------------------------------------------------------------------------------- FlexNet (S27)


@dataclass(frozen=True)
class FlexNetConfig:
    """One FlexNet: ``hidden`` channels, scaled per block group by ``width_factors`` ((factor, blocks), ...).

    Every conv is a FlexConv (MAGNet kernel net of ``kernel_hidden`` units and ``kernel_layers`` layers, Gaussian
    mask initialised at σ = ``mask_init``) sampled on a ``kernel_size`` grid; ``omega_0=None`` keeps the
    operator's MAGNet default. ``dropout`` follows the first ReLU of each block; ``dim`` is the data dimension.
    """

    hidden: int = 24
    width_factors: tuple[tuple[float, int], ...] = ((1.0, 2), (1.5, 3), (2.0, 2))
    kernel_size: int = 33
    kernel_hidden: int = 32
    kernel_layers: int = 3
    omega_0: float | None = None
    mask_init: float = 0.075
    dropout: float = 0.2
    dim: int = 2


def _flexnet_block(cfg: FlexNetConfig, c_in: int, c_out: int, position: str, op: str | None) -> ResidualBlock:
    """ReLU(BN(FlexConv(Dropout(ReLU(BN(FlexConv(x)))))) + shortcut(x)); a 1×1 shortcut where widths change."""
    k, d = cfg.kernel_size, cfg.dim

    def mixer(name: str, a: int, b: int) -> nn.Module:
        return make_mixer(f"{position}.body.{name}", op, lambda: _flexconv(cfg, a, b, False), a, b, k, dim=d, bias=True)

    body = nn.Sequential(
        OrderedDict(
            conv1=mixer("conv1", c_in, c_out),
            norm1=_BN[d](c_out),
            act=nn.ReLU(),
            drop=nn.Dropout(cfg.dropout),
            conv2=mixer("conv2", c_out, c_out),
            norm2=_BN[d](c_out),
        )
    )
    shortcut = None if c_in == c_out else (nn.Conv1d, nn.Conv2d, nn.Conv3d)[d - 1](c_in, c_out, 1)
    return ResidualBlock(body, shortcut, nn.ReLU())


class FlexNet(ConvNet):
    """FlexNet (S27, FlexConv: Continuous Kernel Convolutions with Differentiable Kernel Sizes), e.g. FlexNet-7.

    Follows the official rjbruin/flexconv ``Img_ResNet``: FlexConv stem → BN → ReLU, then residual blocks of two
    FlexConvs at full resolution, global average pool and a linear classifier (Kaiming-normal, zero bias). Stages
    (``features_only``) are the groups of equal width, all at stride 1. ``op=`` replaces every block FlexConv
    (not the stem) with ``create_op(op, C_in, C_out, kernel_size)``. Departures: the kernel net follows the CCNN
    code's MAGNet (see :class:`convzoo.ops.continuous.FlexConv`), and FlexConv's dynamic cropping is not used.
    """

    def __init__(self, cfg: FlexNetConfig, *, num_classes: int = 10, in_chans: int = 3, op: str | None = None):
        super().__init__()
        if cfg.dim not in (1, 2, 3):
            raise ValueError(f"flexnet: dim must be 1, 2 or 3, got {cfg.dim!r}")
        self.stem = nn.Sequential(_flexconv(cfg, in_chans, cfg.hidden, False), _BN[cfg.dim](cfg.hidden), nn.ReLU())
        stages, self.feature_info = [], []
        c_in = cfg.hidden
        for s, (factor, count) in enumerate(cfg.width_factors):
            c_out = int(cfg.hidden * factor)
            blocks = []
            for b in range(count):
                blocks.append(_flexnet_block(cfg, c_in, c_out, f"stages.{s}.{b}", op))
                c_in = c_out
            stages.append(nn.Sequential(*blocks))
            self.feature_info.append(FeatureInfo(f"stages.{s}", c_out, 1))
        self.stages = nn.ModuleList(stages)
        self.head = ClassifierHead(c_in, num_classes)
        _init_head(self.head)


# ---------------------------------------------------------------------------------------------- CCNN (S117)


@dataclass(frozen=True)
class CCNNConfig:
    """One CCNN_{blocks, hidden}: ``blocks`` residual blocks of ``hidden`` channels at full resolution.

    Every conv is a separable FlexConv (depthwise continuous kernel + 1×1 channel mixer) with a MAGNet kernel net
    (``kernel_hidden`` units, ``kernel_layers`` layers, frequency scale ``omega_0``) on a ``kernel_size`` grid and
    a Gaussian mask initialised at ``mask_init``. ``dropout`` (channel dropout) sits after the block's GELU.
    """

    hidden: int = 140
    blocks: int = 4
    kernel_size: int = 33
    kernel_hidden: int = 32
    kernel_layers: int = 3
    omega_0: float | None = None
    mask_init: float = 0.075
    dropout: float = 0.1
    dim: int = 2


def _ccnn_block(cfg: CCNNConfig, position: str, op: str | None) -> ResidualBlock:
    """x + GELU(Linear(Dropout(GELU(SepFlexConv(BN(x)))))): the official pre-norm "S4" block."""
    c, k, d = cfg.hidden, cfg.kernel_size, cfg.dim
    body = nn.Sequential(
        OrderedDict(
            norm=_BN[d](c),
            conv=make_mixer(f"{position}.body.conv", op, lambda: _flexconv(cfg, c, c, True), c, c, k, dim=d, bias=True),
            act=nn.GELU(),
            drop=_DROPOUT[d](cfg.dropout),
            linear=(nn.Conv1d, nn.Conv2d, nn.Conv3d)[d - 1](c, c, 1),
            act_out=nn.GELU(),
        )
    )
    nn.init.kaiming_normal_(body.linear.weight)
    nn.init.zeros_(body.linear.bias)
    return ResidualBlock(body)


class CCNN(ConvNet):
    """CCNN (S117, Modelling Long Range Dependencies in ND: From Task-Specific to a General Purpose CNN).

    Follows the official david-knigge/ccnn ``ResNet_image`` with ``block.type=S4``, ``prenorm=True``: separable
    FlexConv stem → BN → GELU, ``blocks`` pre-norm residual blocks, a final BN (``final_norm``), global average
    pool and a linear classifier (Kaiming-normal, zero bias). One stage (``features_only``) at stride 1 — the
    CCNN never downsamples. The same class runs on 1-D, 2-D and 3-D data (``dim``). ``op=`` replaces every
    block's separable FlexConv (not the stem) with ``create_op(op, C, C, kernel_size)``. Departure: FlexConv's
    dynamic cropping is not used (the full ``kernel_size`` grid is always sampled).
    """

    def __init__(self, cfg: CCNNConfig, *, num_classes: int = 10, in_chans: int = 3, op: str | None = None):
        super().__init__()
        if cfg.dim not in (1, 2, 3):
            raise ValueError(f"ccnn: dim must be 1, 2 or 3, got {cfg.dim!r}")
        c = cfg.hidden
        self.stem = nn.Sequential(_flexconv(cfg, in_chans, c, True), _BN[cfg.dim](c), nn.GELU())
        blocks = [_ccnn_block(cfg, f"stages.0.{i}", op) for i in range(cfg.blocks)]
        self.stages = nn.ModuleList([nn.Sequential(*blocks)])
        self.feature_info = [FeatureInfo("stages.0", c, 1)]
        self.final_norm = _BN[cfg.dim](c)
        self.head = ClassifierHead(c, num_classes)
        _init_head(self.head)


def _init_head(head: ClassifierHead) -> None:
    """The official output layer: Kaiming-normal weight, zero bias."""
    if isinstance(head.fc, nn.Linear):
        nn.init.kaiming_normal_(head.fc.weight)
        nn.init.zeros_(head.fc.bias)


register_variant(
    "flexnet_7",
    FlexNet,
    FlexNetConfig(),
    papers=("flexconv",),
    params=671_620,
    params_source="S27 Table 3 (CIFAR-10): FlexNet-7 0.67M; exact count of the official rjbruin/flexconv CIFAR-10 "
    "command (hidden 24, width factors 1/1.5/2 × 2/3/2 blocks, MAGNet 32×3), derived by hand in "
    "tests/models/test_ccnn.py",
    input_size=(3, 32, 32),
    num_classes=10,
    summary="FlexNet-7 (S27, FlexConv): 7 residual FlexConv blocks, widths 24/36/48, 33×33 kernels, CIFAR-10",
    test_cfg={"width_factors": ((1.0, 1), (1.5, 1)), "kernel_size": 9},
)

_CCNN_SIZES = {
    # (blocks, hidden): kernel-net width, ω₀ and dropout of the official CIFAR-10 commands; exact hand count
    (4, 140): (32, 4231.568793085858, 0.1, 201_042),
    (6, 380): (64, 976.781, 0.15, 1_999_366),
}
for (_blocks, _hidden), (_khidden, _omega, _dropout, _params) in _CCNN_SIZES.items():
    register_variant(
        f"ccnn_{_blocks}_{_hidden}",
        CCNN,
        CCNNConfig(hidden=_hidden, blocks=_blocks, kernel_hidden=_khidden, omega_0=_omega, dropout=_dropout),
        papers=("ccnn",),
        params=_params,
        params_source=f"S117 names CCNN_{{{_blocks},{_hidden}}} by its size (≈{'200K' if _blocks == 4 else '2M'}, "
        "rounded); no exact count is published: the registered count is a hand count of the official "
        "david-knigge/ccnn CIFAR-10 config, derived in tests/models/test_ccnn.py",
        input_size=(3, 32, 32),
        num_classes=10,
        summary=f"CCNN_{{{_blocks},{_hidden}}} (S117, CCNN): {_blocks} pre-norm separable FlexConv blocks of "
        f"{_hidden} channels, 33×33 kernels, CIFAR-10",
        test_cfg={"blocks": 1, "kernel_size": 9},
    )
