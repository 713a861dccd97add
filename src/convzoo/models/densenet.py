"""DenseNet (S36, Huang et al., "Densely Connected Convolutional Networks"): DenseNet-121/169/201, the CIFAR
DenseNet and DenseNet-BC, and the memory-efficient (checkpointed) form of Pleiss et al.

Layer ℓ of a dense block computes x_ℓ = H_ℓ([x_0, x_1, …, x_{ℓ-1}]) from the concatenation of every earlier
output; H_ℓ is BN-ReLU-3×3 conv, preceded in DenseNet-B by a BN-ReLU-1×1 "bottleneck" to ``bn_size``·k channels.
Transitions (BN-ReLU-1×1 conv-2×2 average pool) between blocks keep ⌊θ·m⌋ of their m channels (DenseNet-C
when θ < 1). The ImageNet DenseNets are DenseNet-BC (bottleneck, θ = 0.5); the CIFAR DenseNet-40 is neither.

``memory_efficient=True`` recomputes the concatenation, the first BN-ReLU and the 1×1 conv during the backward
pass (``torch.utils.checkpoint``) instead of storing them, as in Pleiss et al., "Memory-Efficient Implementation
of DenseNets" (2017): outputs and gradients are the same, feature-map memory grows linearly instead of
quadratically with depth. The recomputation does not update BatchNorm running statistics a second time.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.utils.checkpoint import checkpoint

from convzoo.models.base import ClassifierHead, ConvNet, FeatureInfo
from convzoo.models.registration import make_mixer, register_variant

__all__ = ["DenseNetConfig", "DenseNet", "DenseLayer", "DenseBlock", "Transition"]


@dataclass(frozen=True)
class DenseNetConfig:
    """One DenseNet.

    ``layers``: dense layers per block; ``growth_rate`` k: channels each layer adds.
    ``bottleneck`` ("B"): a BN-ReLU-1×1 conv to ``bn_size``·k channels before each 3×3.
    ``compression`` θ ("C"): a transition keeps ⌊θ·m⌋ of its m input channels (1.0 keeps all).
    ``stem``: "imagenet" (7×7/2 conv, BN, ReLU, 3×3/2 max pool) or "cifar" (one 3×3 conv), ``stem_width`` wide.
    ``drop_rate``: dropout after each layer's 3×3 conv. ``memory_efficient``: checkpoint the bottleneck function.
    """

    layers: tuple[int, ...] = (6, 12, 24, 16)
    growth_rate: int = 32
    stem: str = "imagenet"
    stem_width: int = 64
    bottleneck: bool = True
    bn_size: int = 4
    compression: float = 0.5
    drop_rate: float = 0.0
    memory_efficient: bool = False


class DenseLayer(nn.Module):
    """H_ℓ: concatenate → BN → ReLU → [1×1 conv → BN → ReLU] → 3×3 conv (the spatial mixer) → dropout.

    ``forward`` takes the list of tensors the layer aggregates. The "bottleneck function" (concatenation,
    first BN-ReLU and the 1×1 conv) is recomputed in the backward pass when ``memory_efficient``.
    """

    def __init__(
        self,
        in_channels: int,
        growth_rate: int,
        *,
        bottleneck: bool,
        bn_size: int,
        drop_rate: float,
        memory_efficient: bool,
        position: str,
        op: str | None,
    ) -> None:
        super().__init__()
        self.memory_efficient = memory_efficient
        self.norm1 = nn.BatchNorm2d(in_channels)
        mid = bn_size * growth_rate if bottleneck else in_channels
        self.conv1 = nn.Conv2d(in_channels, mid, 1, bias=False) if bottleneck else None
        self.norm2 = nn.BatchNorm2d(mid) if bottleneck else None

        def default() -> nn.Module:
            return nn.Conv2d(mid, growth_rate, 3, padding=1, bias=False)

        self.conv2 = make_mixer(f"{position}.conv2", op, default, mid, growth_rate, 3)
        self.drop = nn.Dropout(drop_rate) if drop_rate > 0 else nn.Identity()

    def bottleneck_function(self, features: Sequence[Tensor], update_stats: bool = True) -> Tensor:
        """Concatenate → BN → ReLU → 1×1 conv; ``update_stats=False`` leaves the BN running averages alone."""
        x = torch.cat(list(features), 1)  # (N, ΣC_i, H, W)
        norm = self.norm1
        if norm.training and not update_stats:
            # recomputation in the backward pass: the same batch statistics as in the forward pass, whose call
            # already moved the running averages once; momentum 0 leaves them where they are
            x = F.batch_norm(x, norm.running_mean, norm.running_var, norm.weight, norm.bias, True, 0.0, norm.eps)
        else:
            x = norm(x)
        x = F.relu(x)
        return x if self.conv1 is None else self.conv1(x)

    def forward(self, features: Sequence[Tensor]) -> Tensor:
        if self.memory_efficient and torch.is_grad_enabled() and any(f.requires_grad for f in features):
            calls: list[None] = []

            def run(*inputs: Tensor) -> Tensor:
                calls.append(None)
                return self.bottleneck_function(inputs, update_stats=len(calls) == 1)

            x = checkpoint(run, *features, use_reentrant=False)
        else:
            x = self.bottleneck_function(features)
        if self.norm2 is not None:
            x = F.relu(self.norm2(x))
        return self.drop(self.conv2(x))


class DenseBlock(nn.Module):
    """``num_layers`` dense layers: layer ℓ reads [x_0, …, x_{ℓ-1}]; the block returns [x_0, …, x_L] concatenated."""

    def __init__(self, in_channels: int, num_layers: int, growth_rate: int, *, position: str, op, **layer_kw) -> None:
        super().__init__()
        self.layers = nn.ModuleList(
            DenseLayer(in_channels + i * growth_rate, growth_rate, position=f"{position}.layers.{i}", op=op, **layer_kw)
            for i in range(num_layers)
        )
        self.out_channels = in_channels + num_layers * growth_rate

    def forward(self, x: Tensor) -> Tensor:
        features = [x]
        for layer in self.layers:
            features.append(layer(list(features)))
        return torch.cat(features, 1)  # (N, C_0 + L·k, H, W)


class Transition(nn.Sequential):
    """BN → ReLU → 1×1 conv (``out_channels`` = ⌊θ·m⌋) → 2×2 average pool, between dense blocks."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__(
            nn.BatchNorm2d(in_channels),
            nn.ReLU(inplace=True),
            nn.Conv2d(in_channels, out_channels, 1, bias=False),
            nn.AvgPool2d(2, 2),
        )


def dense_stem(stem: str, in_chans: int, width: int, owner: str) -> tuple[nn.Module, int]:
    """The ImageNet stem (7×7/2 conv, BN, ReLU, 3×3/2 max pool; stride 4) or the CIFAR one (a 3×3 conv; stride 1)."""
    if stem == "imagenet":
        layers = [nn.Conv2d(in_chans, width, 7, 2, 3, bias=False), nn.BatchNorm2d(width), nn.ReLU(inplace=True)]
        return nn.Sequential(*layers, nn.MaxPool2d(3, 2, 1)), 4
    if stem == "cifar":
        return nn.Conv2d(in_chans, width, 3, padding=1, bias=False), 1
    raise ValueError(f"{owner}: stem must be 'imagenet' or 'cifar', got {stem!r}")


def init_dense_weights(model: nn.Module) -> None:
    """He-normal convs, unit/zero BN, zero linear biases (as in the reference implementations)."""
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
        elif isinstance(m, nn.Linear):
            nn.init.zeros_(m.bias)


class DenseNet(ConvNet):
    """DenseNet family (S36): stem → [transition →] dense block per stage → BN-ReLU → global pool → linear.

    Stages split at the transitions: stage i > 0 is transition i-1 followed by dense block i. ``op=`` replaces
    the 3×3 conv of every dense layer (the only spatial mixer; stem and 1×1s stay).
    """

    def __init__(self, cfg: DenseNetConfig, *, num_classes: int = 1000, in_chans: int = 3, op: str | None = None):
        super().__init__()
        if not cfg.layers or min(cfg.layers) < 1:
            raise ValueError(f"densenet: layers must be positive block depths, got {cfg.layers}")
        if not 0.0 < cfg.compression <= 1.0:
            raise ValueError(f"densenet: compression must be in (0, 1], got {cfg.compression}")
        self.stem, reduction = dense_stem(cfg.stem, in_chans, cfg.stem_width, "densenet")
        layer_kw = dict(
            bottleneck=cfg.bottleneck,
            bn_size=cfg.bn_size,
            drop_rate=cfg.drop_rate,
            memory_efficient=cfg.memory_efficient,
        )
        channels = cfg.stem_width
        stages, self.feature_info = [], []
        for i, depth in enumerate(cfg.layers):
            parts: list[nn.Module] = []
            if i > 0:
                out = int(channels * cfg.compression)  # ⌊θ·m⌋
                parts.append(Transition(channels, out))
                channels, reduction = out, reduction * 2
            block = DenseBlock(channels, depth, cfg.growth_rate, position=f"stages.{i}.{len(parts)}", op=op, **layer_kw)
            parts.append(block)
            channels = block.out_channels
            stages.append(nn.Sequential(*parts))
            self.feature_info.append(FeatureInfo(f"stages.{i}", channels, reduction))
        self.stages = nn.ModuleList(stages)
        self.final_norm = nn.Sequential(nn.BatchNorm2d(channels), nn.ReLU(inplace=True))
        self.head = ClassifierHead(channels, num_classes)
        init_dense_weights(self)


_TV = "torchvision ImageNet weights"
for _depth, _layers, _params in (
    (121, (6, 12, 24, 16), 7_978_856),
    (169, (6, 12, 32, 32), 14_149_480),
    (201, (6, 12, 48, 32), 20_013_928),
):
    register_variant(
        f"densenet{_depth}",
        DenseNet,
        DenseNetConfig(layers=_layers),
        papers=("densenet",),
        params=_params,
        params_source=f"{_TV} (densenet{_depth}); S36 Table 1 (k = 32, DenseNet-BC)",
        summary=f"DenseNet-{_depth} (S36): DenseNet-BC, k = 32, blocks {_layers}, optional memory-efficient mode",
    )

# CIFAR DenseNets (S36 Table 2 gives 1.0M and 0.8M; exact counts by hand, 10 classes:
#   stem 3·9·c0; layer with m inputs: BN 2m + [1×1 m·4k + BN 2·4k] + 3×3 (4k or m)·9·k;
#   transition 2m + m·⌊θm⌋; final BN 2m + linear m·10 + 10)
register_variant(
    "densenet40_k12",
    DenseNet,
    DenseNetConfig(layers=(12, 12, 12), growth_rate=12, stem="cifar", stem_width=16, bottleneck=False, compression=1.0),
    papers=("densenet",),
    params=1_019_722,
    params_source="S36 Table 2: 1.0M (DenseNet L=40, k=12); exact count by hand from its layer table, 10 classes",
    input_size=(3, 32, 32),
    num_classes=10,
    summary="CIFAR DenseNet (L=40, k=12) (S36): three blocks of 12 BN-ReLU-3×3 layers, no bottleneck or compression",
    test_size=16,
)
register_variant(
    "densenet_bc100_k12",
    DenseNet,
    DenseNetConfig(layers=(16, 16, 16), growth_rate=12, stem="cifar", stem_width=24),
    papers=("densenet",),
    params=769_162,
    params_source="S36 Table 2: 0.8M (DenseNet-BC L=100, k=12); exact count by hand from its layer table, 10 classes",
    input_size=(3, 32, 32),
    num_classes=10,
    summary="CIFAR DenseNet-BC (L=100, k=12) (S36): bottleneck layers and θ = 0.5 transitions, stem 2k",
    test_size=16,
)
