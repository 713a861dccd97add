"""UniRepLKNet (S12, S15, "UniRepLKNet: A Universal Perception Large-Kernel ConvNet"): dilated-reparam large-kernel
depthwise blocks with SE and a GRN feed-forward, sizes A/F/P/N/T."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from convzoo.core.init import drop_path_rates, trunc_normal_init_
from convzoo.layers.drop_path import DropPath
from convzoo.layers.layer_scale import LayerScale, optional_layer_scale
from convzoo.layers.norm import LayerNormChannelsFirst
from convzoo.layers.squeeze_excite import SqueezeExcite
from convzoo.layers.stage import Stage
from convzoo.models.base import ClassifierHead, ConvNet, FeatureInfo
from convzoo.models.registration import make_mixer, register_variant
from convzoo.ops.base import create_op
from convzoo.ops.dilated_reparam import DilatedReparam

__all__ = ["UniRepLKNetConfig", "UniRepLKNet", "KERNEL_SIZES", "DEPLOY_PARAMS"]

# Kernel size of every block, per depth pattern: the official default_*_kernel_sizes tables (AILab-CVC/UniRepLKNet,
# unireplknet.py). 3 = plain depthwise 3×3; 13 = Dilated Reparam Block (13×13 plus dilated 5@1, 7@2, 3@3, 3@4, 3@5).
KERNEL_SIZES: dict[tuple[int, ...], tuple[tuple[int, ...], ...]] = {
    (2, 2, 6, 2): ((3, 3), (13, 13), (13,) * 6, (13, 13)),
    (2, 2, 8, 2): ((3, 3), (13, 13), (13,) * 8, (13, 13)),
    (3, 3, 18, 3): ((3, 3, 3), (13, 13, 13), (13, 3) * 9, (13, 13, 13)),
    (3, 3, 27, 3): ((3, 3, 3), (13, 13, 13), (13, 3, 3) * 9, (13, 13, 13)),
}


@dataclass(frozen=True)
class UniRepLKNetConfig:
    """One UniRepLKNet. ``kernel_sizes``: one tuple per stage, one kernel size per block (0: no spatial mixer,
    3 or 5: plain depthwise conv, 7..17: Dilated Reparam Block); ``None`` takes :data:`KERNEL_SIZES` for ``depths``.
    """

    depths: tuple[int, ...] = (2, 2, 6, 2)
    dims: tuple[int, ...] = (40, 80, 160, 320)
    kernel_sizes: tuple[tuple[int, ...], ...] | None = None
    ffn_ratio: float = 4.0
    se_reduction: int = 4
    layer_scale_init: float = 1e-6
    drop_path_rate: float = 0.0


class _GlobalResponseNorm(nn.Module):
    """GRN (ConvNeXt V2) on (N, H, W, C): ``x · (1 + γ · G / mean_C(G)) + β`` with ``G = ‖x‖₂`` over H, W."""

    def __init__(self, channels: int, bias: bool = True) -> None:
        super().__init__()
        self.gamma = nn.Parameter(torch.zeros(channels))
        self.beta = nn.Parameter(torch.zeros(channels)) if bias else None

    def forward(self, x: Tensor) -> Tensor:
        response = torch.linalg.vector_norm(x, dim=(1, 2), keepdim=True)  # (N, 1, 1, C)
        normalized = response / (response.mean(dim=-1, keepdim=True) + 1e-6)  # (N, 1, 1, C)
        out = x * (self.gamma * normalized + 1)
        return out if self.beta is None else out + self.beta


class _Block(nn.Module):
    """UniRepLKNet block on (N, C, H, W): ``x + drop_path(γ · BN(pw2(GRN(GELU(pw1(SE(BN(mixer(x)))))))))``.

    The layout of :class:`~convzoo.layers.metanext_block.MetaNeXtBlock` (mixer → norm → MLP → γ → drop path,
    residual), but the paper's feed-forward is not the plain MLP: SE before it, GRN inside it and BN after it;
    and the block folds into a deploy form (:meth:`reparameterize`), which needs each of those pieces by name.
    """

    def __init__(
        self, cfg: UniRepLKNetConfig, dim: int, kernel: int, drop_path: float, position: str, op: str | None
    ) -> None:
        super().__init__()
        if kernel == 0:
            self.dwconv: nn.Module = nn.Identity()
        elif kernel in (3, 5):
            self.dwconv = nn.Conv2d(dim, dim, kernel, padding=kernel // 2, groups=dim, bias=False)
        else:

            def default() -> nn.Module:
                return create_op("dilated_reparam", dim, dim, kernel)

            options = {"groups": dim} if op == "conv" else {}
            self.dwconv = make_mixer(f"{position}.dwconv", op, default, dim, dim, kernel, **options)
        self.norm = nn.Identity() if kernel == 0 else nn.BatchNorm2d(dim)
        self.se = SqueezeExcite(dim, reduction=cfg.se_reduction)
        hidden = int(cfg.ffn_ratio * dim)
        self.pwconv1 = nn.Linear(dim, hidden)
        self.act = nn.GELU()
        self.grn = _GlobalResponseNorm(hidden)
        self.pwconv2 = nn.Linear(hidden, dim, bias=False)
        self.ffn_norm: nn.Module = nn.BatchNorm2d(dim)
        self.layer_scale = optional_layer_scale(dim, cfg.layer_scale_init)
        self.drop_path = DropPath(drop_path) if drop_path > 0 else nn.Identity()

    def forward(self, x: Tensor) -> Tensor:
        y = self.se(self.norm(self.dwconv(x)))
        y = self.grn(self.act(self.pwconv1(y.permute(0, 2, 3, 1))))  # (N, H, W, 4C)
        y = self.ffn_norm(self.pwconv2(y).permute(0, 3, 1, 2))  # (N, H, W, C) -> (N, C, H, W)
        return x + self.drop_path(self.layer_scale(y))

    @torch.no_grad()
    def reparameterize(self) -> None:
        """Fold, in place, into the deploy form (exact in eval mode): the Dilated Reparam Block into one
        depthwise conv, the BN after the mixer into that conv, and GRN's β, the FFN's BN and the layer scale into
        ``pwconv2`` (which gains a bias). A mixer that is neither keeps its BN."""
        if isinstance(self.dwconv, DilatedReparam):
            self.dwconv = self.dwconv.merge()
        if isinstance(self.dwconv, nn.Conv2d) and isinstance(self.norm, nn.BatchNorm2d):
            self.dwconv = _fold_bn_into_conv(self.dwconv, self.norm)
            self.norm = nn.Identity()
        if isinstance(self.ffn_norm, nn.BatchNorm2d):
            bn = self.ffn_norm
            scale = bn.weight / torch.sqrt(bn.running_var + bn.eps)  # (C,)
            shift = bn.bias - bn.running_mean * scale  # (C,)
            if isinstance(self.layer_scale, LayerScale):
                gamma = self.layer_scale.scale
                scale, shift = scale * gamma, shift * gamma
            bias = shift if self.pwconv2.bias is None else shift + self.pwconv2.bias * scale
            if self.grn.beta is not None:
                bias = bias + (self.pwconv2.weight @ self.grn.beta) * scale  # W (z + β) = W z + W β
                self.grn.beta = None
            linear = nn.Linear(self.pwconv2.in_features, self.pwconv2.out_features, device=bias.device)
            linear.weight.copy_(self.pwconv2.weight * scale[:, None])
            linear.bias.copy_(bias)
            self.pwconv2, self.ffn_norm, self.layer_scale = linear, nn.Identity(), nn.Identity()


def _fold_bn_into_conv(conv: nn.Conv2d, bn: nn.BatchNorm2d) -> nn.Conv2d:
    """The conv equal to ``bn(conv(x))`` with running statistics: ``w·γ/σ`` and ``β + (b − μ)·γ/σ``."""
    scale = bn.weight / torch.sqrt(bn.running_var + bn.eps)  # (C,)
    bias = conv.bias if conv.bias is not None else torch.zeros_like(bn.running_mean)
    fused = nn.Conv2d(
        conv.in_channels, conv.out_channels, conv.kernel_size, conv.stride, conv.padding, conv.dilation, conv.groups
    ).to(scale.device)
    fused.weight.copy_(conv.weight * scale.view(-1, 1, 1, 1))
    fused.bias.copy_(bn.bias + (bias - bn.running_mean) * scale)
    return fused


class UniRepLKNet(ConvNet):
    """UniRepLKNet (S12, S15, Ding et al.), after the official AILab-CVC/UniRepLKNet ``unireplknet.py``.

    Stem: conv 3×3/2 (C/2), LayerNorm, GELU, conv 3×3/2 (C), LayerNorm; stages 2–4 start with conv 3×3/2 and
    LayerNorm (channels-first, eps 1e-6, with bias). Block: depthwise mixer (Dilated Reparam Block for kernel 13,
    plain depthwise 3×3 where the official tables say 3) → BN → SE (C/4, ReLU, sigmoid) → Linear 4C → GELU → GRN →
    Linear C (no bias) → BN → layer scale (1e-6) → DropPath, residual. Head: global average pool, LayerNorm,
    Linear. The model is built in its training form; :meth:`reparameterize` turns it into the deploy form, whose
    parameter count is the paper's (A: 4,437,300 deploy vs 4,649,060 training, and so on).

    ``op=`` replaces the large-kernel mixer (every block of kernel ≥ 7); the depthwise 3×3 blocks keep their
    plain conv, as the task specifies; ``op="conv"`` keeps the replaced mixer depthwise (``groups`` = channels).
    """

    def __init__(
        self, cfg: UniRepLKNetConfig, *, num_classes: int = 1000, in_chans: int = 3, op: str | None = None
    ) -> None:
        super().__init__()
        kernel_sizes = cfg.kernel_sizes if cfg.kernel_sizes is not None else KERNEL_SIZES.get(tuple(cfg.depths))
        if kernel_sizes is None:
            known = ", ".join(str(d) for d in KERNEL_SIZES)
            raise ValueError(f"unireplknet: no default kernel sizes for depths {cfg.depths} (known: {known})")
        if len(cfg.dims) != len(cfg.depths) or [len(k) for k in kernel_sizes] != list(cfg.depths):
            raise ValueError(
                f"unireplknet: dims {cfg.dims} and kernel_sizes {kernel_sizes} must match depths {cfg.depths}"
            )
        dims = cfg.dims
        self.stem = nn.Sequential(
            nn.Conv2d(in_chans, dims[0] // 2, 3, 2, 1),
            LayerNormChannelsFirst(dims[0] // 2),
            nn.GELU(),
            nn.Conv2d(dims[0] // 2, dims[0], 3, 2, 1),
            LayerNormChannelsFirst(dims[0]),
        )
        rates = drop_path_rates(cfg.drop_path_rate, sum(cfg.depths))
        reduction, index = 4, 0
        stages, self.feature_info = [], []
        for i, dim in enumerate(dims):
            downsample = None
            if i > 0:
                downsample = nn.Sequential(nn.Conv2d(dims[i - 1], dim, 3, 2, 1), LayerNormChannelsFirst(dim))
                reduction *= 2
            blocks = []
            for j, kernel in enumerate(kernel_sizes[i]):
                blocks.append(_Block(cfg, dim, kernel, rates[index], f"stages.{i}.blocks.{j}", op))
                index += 1
            stages.append(Stage(downsample, blocks))
            self.feature_info.append(FeatureInfo(f"stages.{i}", dim, reduction))
        self.stages = nn.ModuleList(stages)
        self.head = ClassifierHead(dims[-1], num_classes, norm=nn.LayerNorm(dims[-1], eps=1e-6))
        self._init_weights(op)

    def _init_weights(self, op: str | None) -> None:
        trunc_normal_init_(self)
        for m in self.modules():
            if isinstance(m, SqueezeExcite) or (op is None and isinstance(m, DilatedReparam)):
                # the official block builds these from nn.Conv2d layers, initialised like the rest
                for name, p in m.named_parameters(recurse=False):
                    if p.dim() >= 2:
                        nn.init.trunc_normal_(p, std=0.02)
                    elif name.endswith("bias"):
                        nn.init.zeros_(p)
                for w in getattr(m, "dilated_weights", ()):
                    nn.init.trunc_normal_(w, std=0.02)

    def reparameterize(self) -> UniRepLKNet:
        """Turn every block into its deploy form in place (see ``_Block.reparameterize``); returns ``self``.

        Exact for the model in eval mode (BNs are folded with their running statistics).
        """
        for stage in self.stages:
            for block in stage.blocks:
                block.reparameterize()
        return self


# size: depths, dims, training-form count and deploy-form count (official unireplknet.py, counted before and after
# reparameterize_unireplknet()), and the figure the paper and README publish (the deploy form's)
_VARIANTS = {
    "a": ((2, 2, 6, 2), (40, 80, 160, 320), 4_649_060, 4_437_300, "4.4M"),
    "f": ((2, 2, 6, 2), (48, 96, 192, 384), 6_489_328, 6_235_216, "6.2M"),
    "p": ((2, 2, 6, 2), (64, 128, 256, 512), 11_080_520, 10_741_704, "10.7M"),
    "n": ((2, 2, 8, 2), (80, 160, 320, 640), 18_818_880, 18_318_560, "18.3M"),
    "t": ((3, 3, 18, 3), (80, 160, 320, 640), 31_693_420, 31_037_980, "31M"),
}
DEPLOY_PARAMS = {f"unireplknet_{size}": v[3] for size, v in _VARIANTS.items()}

for _size, (_depths, _dims, _train, _deploy, _published) in _VARIANTS.items():
    register_variant(
        f"unireplknet_{_size}",
        UniRepLKNet,
        UniRepLKNetConfig(depths=_depths, dims=_dims),
        papers=("unireplknet",),
        params=_train,
        params_source=(
            f"official unireplknet.py (unireplknet_{_size}), training form: {_train:,}; S12 / official README "
            f"{_published} is the reparameterized deploy form, {_deploy:,}"
        ),
        summary=f"UniRepLKNet-{_size.upper()} (S12, S15): dilated-reparam 13×13 depthwise blocks, dims {_dims}",
        test_cfg={"depths": (1, 1, 2, 1), "kernel_sizes": ((3,), (13,), (13, 3), (13,))},
    )
