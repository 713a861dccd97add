"""HorNet (S96, Rao et al., "HorNet: Efficient High-Order Spatial Interactions with Recursive Gated Convolutions").

A ConvNeXt-style macro design (4×4/4 patchify stem, four stages, LayerNorm + 2×2/2 conv between stages) whose
blocks replace the depthwise conv by gⁿConv (:class:`convzoo.ops.gnconv.GnConv`):
``x = x + γ₁ · gⁿConv(LN(x))``, then ``x = x + γ₂ · Linear(GELU(Linear(LN(x))))`` (4× expansion). The
recursion order rises with the stage (2, 3, 4, 5) and every gⁿConv uses the scale 1/3, as in the official
raoyongming/HorNet ``hornet_*_7x7`` models.
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import Tensor, nn

from convzoo.core.init import drop_path_rates, trunc_normal_init_
from convzoo.core.validate import check_odd
from convzoo.layers.drop_path import DropPath
from convzoo.layers.layer_scale import optional_layer_scale
from convzoo.layers.mlp import Mlp
from convzoo.layers.norm import LayerNormChannelsFirst
from convzoo.layers.stage import Stage
from convzoo.models.base import ClassifierHead, ConvNet, FeatureInfo
from convzoo.models.registration import make_mixer, register_variant
from convzoo.ops.gnconv import GnConv

__all__ = ["HorNetConfig", "HorNet"]


@dataclass(frozen=True)
class HorNetConfig:
    """One HorNet network.

    ``depths``: blocks per stage; ``base_dim``: channels of stage 1 (doubling per stage); ``orders``: the gⁿConv
    order of each stage; ``kernel_size``: the depthwise kernel inside gⁿConv (7 for the 7×7 models; also the
    kernel handed to ``op=``); ``scale``: gⁿConv's scale s; ``mlp_ratio``: expansion of the MLP;
    ``layer_scale_init``: initial γ₁, γ₂ (0 disables layer scale); ``drop_path_rate``: stochastic depth rising
    linearly from 0; ``drop_rate``: dropout before the classifier; ``head_init_scale``: factor on the classifier's
    initial weights.
    """

    depths: tuple[int, ...] = (2, 3, 18, 2)
    base_dim: int = 64
    orders: tuple[int, ...] = (2, 3, 4, 5)
    kernel_size: int = 7
    scale: float = 1.0 / 3.0
    mlp_ratio: int = 4
    layer_scale_init: float = 1e-6
    drop_path_rate: float = 0.0
    drop_rate: float = 0.0
    head_init_scale: float = 1.0


class _Block(nn.Module):
    """x + DropPath(γ₁ · gⁿConv(LN(x))), then x + DropPath(γ₂ · MLP(LN(x))); ``op=`` replaces gⁿConv's DW conv.

    The pre-norm pair of :class:`~convzoo.layers.metaformer_block.MetaFormerBlock`, but the paper's block differs
    twice: it scales the residual *branches* (layer scale γ₁, γ₂) where MetaFormerBlock scales the shortcuts, and
    its MLP half runs channels-last (LayerNorm, Linear layers and γ₂ on ``(N, H, W, C)``) while gⁿConv runs
    channels-first, as in the official code.
    """

    def __init__(self, cfg: HorNetConfig, dim: int, order: int, drop_path: float, position: str, op: str | None):
        super().__init__()
        k = cfg.kernel_size
        self.norm1 = LayerNormChannelsFirst(dim, eps=1e-6)
        self.gnconv = GnConv(dim, dim, k, order=order, scale=cfg.scale)
        gated = sum(self.gnconv.dims)
        if op is not None:
            self.gnconv.dwconv = make_mixer(f"{position}.gnconv.dwconv", op, None, gated, gated, k, bias=True)
        self.norm2 = nn.LayerNorm(dim, eps=1e-6)
        self.mlp = Mlp(dim, cfg.mlp_ratio * dim)
        self.layer_scale1 = optional_layer_scale(dim, cfg.layer_scale_init)
        self.layer_scale2 = optional_layer_scale(dim, cfg.layer_scale_init, channels_last=True)
        self.drop_path = DropPath(drop_path)

    def forward(self, x: Tensor) -> Tensor:
        x = x + self.drop_path(self.layer_scale1(self.gnconv(self.norm1(x))))
        y = self.layer_scale2(self.mlp(self.norm2(x.permute(0, 2, 3, 1))))  # (N, H, W, C): LN and MLP on the last dim
        return x + self.drop_path(y.permute(0, 3, 1, 2))  # (N, C, H, W)


class HorNet(ConvNet):
    """HorNet (S96, HorNet: Efficient High-Order Spatial Interactions with Recursive Gated Convolutions).

    Follows the official raoyongming/HorNet ``hornet.py``: channels-first LayerNorms (eps 1e-6) in the stem, the
    downsampling layers and before gⁿConv; channels-last LayerNorm before the MLP; head = global average pool →
    LayerNorm → Linear; every conv/linear weight truncated-normal (std 0.02) with zero bias (``uniform_init=False``).

    ``op=`` builds the depthwise ``k×k`` conv inside every gⁿConv as ``create_op(op, G, G, k)`` with ``G = Σ C_k``
    the gated channels (the position the official code fills with its global filter in the ``_gf`` models).
    """

    def __init__(self, cfg: HorNetConfig, *, num_classes: int = 1000, in_chans: int = 3, op: str | None = None):
        super().__init__()
        if len(cfg.depths) != len(cfg.orders) or not cfg.depths:
            raise ValueError(f"hornet: depths {cfg.depths} and orders {cfg.orders} must be non-empty, equal length")
        check_odd(cfg.kernel_size, "kernel_size", "hornet")
        dims = [cfg.base_dim * 2**i for i in range(len(cfg.depths))]
        self.stem = nn.Sequential(nn.Conv2d(in_chans, dims[0], 4, stride=4), LayerNormChannelsFirst(dims[0]))
        rates = drop_path_rates(cfg.drop_path_rate, sum(cfg.depths))
        stages, self.feature_info = [], []
        index, reduction = 0, 4
        for i, (depth, dim, order) in enumerate(zip(cfg.depths, dims, cfg.orders, strict=True)):
            downsample: nn.Module = nn.Identity()
            if i > 0:
                downsample = nn.Sequential(LayerNormChannelsFirst(dims[i - 1]), nn.Conv2d(dims[i - 1], dim, 2, 2))
                reduction *= 2
            blocks = [_Block(cfg, dim, order, rates[index + j], f"stages.{i}.blocks.{j}", op) for j in range(depth)]
            index += depth
            stages.append(Stage(downsample, blocks))
            self.feature_info.append(FeatureInfo(f"stages.{i}", dim, reduction))
        self.stages = nn.ModuleList(stages)
        self.head = ClassifierHead(dims[-1], num_classes, norm=nn.LayerNorm(dims[-1], eps=1e-6), drop=cfg.drop_rate)
        self._init_weights(cfg.head_init_scale, replaced=op is not None)

    def _init_weights(self, head_init_scale: float, replaced: bool) -> None:
        # a replacement operator keeps its own initialisation
        keep = set()
        if replaced:
            keep = {id(m) for block in self.modules() if isinstance(block, GnConv) for m in block.dwconv.modules()}
        trunc_normal_init_(self, skip=keep, head_init_scale=head_init_scale)


register_variant(
    "hornet_tiny_7x7",
    HorNet,
    HorNetConfig(),
    papers=("hornet",),
    params=22_409_512,
    params_source="S96 Table 1 (HorNet-T 7×7): 22M; exact count of the official hornet_tiny_7x7 config "
    "(depths 2-3-18-2, base 64, orders 2-5, s=1/3), derived by hand in tests/models/test_hornet.py",
    summary="HorNet-T 7×7 (S96, HorNet: recursive gated convolutions): depths (2, 3, 18, 2), base width 64",
    test_cfg={"depths": (1, 1, 1, 1)},
)
