"""SparseNet (S85, Zhu et al., "Sparsely Aggregated Convolutional Networks"): DenseNet layers that aggregate only
the outputs at exponential offsets 1, 2, 4, 8, … back instead of every earlier output.

Within a block, with x_0 the block input and x_j the output of layer j, layer ℓ computes

    x_ℓ = H_ℓ([x_{ℓ-1}, x_{ℓ-2}, x_{ℓ-4}, …, x_{ℓ-2^i}])   for every i with ℓ − 2^i ≥ 0,

so it has ⌊log₂ ℓ⌋ + 1 inputs rather than ℓ, and the block returns the same aggregate taken after its last
layer (the offsets from L + 1). H_ℓ, transitions, stem and head are DenseNet's (S36): BN-ReLU-[1×1]-3×3,
BN-ReLU-1×1-average pool, a 3×3 stem conv of 2k channels on CIFAR, BN-ReLU-global pool-linear.
The aggregate is concatenated newest first, as in the official code (``expFetch``).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from convzoo.models.base import ClassifierHead, ConvNet, FeatureInfo
from convzoo.models.densenet import DenseLayer, Transition, dense_stem, init_dense_weights
from convzoo.models.registration import register_variant

__all__ = ["SparseNetConfig", "SparseNet", "SparseBlock", "exponential_offsets"]


def exponential_offsets(count: int) -> list[int]:
    """Indices into the outputs [x_0, …, x_{count-1}] that the next layer aggregates: count − 2^i ≥ 0, newest first.

    >>> exponential_offsets(8)
    [7, 6, 4, 0]
    """
    indices, step = [], 1
    while step <= count:
        indices.append(count - step)
        step *= 2
    return indices


@dataclass(frozen=True)
class SparseNetConfig:
    """One SparseNet.

    ``layers``: layers per block; ``growth_rates``: k of each block (one per block, e.g. (16, 32, 64)).
    ``bottleneck``, ``bn_size``, ``compression`` θ, ``drop_rate``, ``memory_efficient``: as in DenseNet
    (SparseNet-BC: bottleneck and θ = 0.5). ``stem``: "cifar" or "imagenet"; ``stem_width``: 2·k of block 1
    in the paper's CIFAR networks.
    """

    layers: tuple[int, ...] = (12, 12, 12)
    growth_rates: tuple[int, ...] = (24, 24, 24)
    stem: str = "cifar"
    stem_width: int = 48
    bottleneck: bool = False
    bn_size: int = 4
    compression: float = 1.0
    drop_rate: float = 0.0
    memory_efficient: bool = False


class SparseBlock(nn.Module):
    """``num_layers`` DenseNet layers wired sparsely: layer ℓ reads the outputs at offsets 1, 2, 4, … back."""

    def __init__(self, in_channels: int, num_layers: int, growth_rate: int, *, position: str, op, **layer_kw) -> None:
        super().__init__()
        channels = [in_channels]  # channels of x_0, x_1, …
        layers = []
        for i in range(num_layers):
            fan_in = sum(channels[j] for j in exponential_offsets(len(channels)))
            layers.append(DenseLayer(fan_in, growth_rate, position=f"{position}.layers.{i}", op=op, **layer_kw))
            channels.append(growth_rate)
        self.layers = nn.ModuleList(layers)
        self.out_channels = sum(channels[j] for j in exponential_offsets(len(channels)))

    def forward(self, x: Tensor) -> Tensor:
        outputs = [x]
        for layer in self.layers:
            outputs.append(layer([outputs[j] for j in exponential_offsets(len(outputs))]))
        return torch.cat([outputs[j] for j in exponential_offsets(len(outputs))], 1)  # (N, out_channels, H, W)


class SparseNet(ConvNet):
    """SparseNet family (S85): stem → [transition →] sparse block per stage → BN-ReLU → global pool → linear.

    ``op=`` replaces the 3×3 conv of every layer, as in DenseNet.
    """

    def __init__(self, cfg: SparseNetConfig, *, num_classes: int = 1000, in_chans: int = 3, op: str | None = None):
        super().__init__()
        if not cfg.layers or min(cfg.layers) < 1:
            raise ValueError(f"sparsenet: layers must be positive block depths, got {cfg.layers}")
        if len(cfg.layers) != len(cfg.growth_rates):
            raise ValueError(f"sparsenet: layers {cfg.layers} and growth_rates {cfg.growth_rates} differ in length")
        if not 0.0 < cfg.compression <= 1.0:
            raise ValueError(f"sparsenet: compression must be in (0, 1], got {cfg.compression}")
        self.stem, reduction = dense_stem(cfg.stem, in_chans, cfg.stem_width, "sparsenet")
        layer_kw = dict(
            bottleneck=cfg.bottleneck,
            bn_size=cfg.bn_size,
            drop_rate=cfg.drop_rate,
            memory_efficient=cfg.memory_efficient,
        )
        channels = cfg.stem_width
        stages, self.feature_info = [], []
        for i, (depth, growth) in enumerate(zip(cfg.layers, cfg.growth_rates, strict=True)):
            parts: list[nn.Module] = []
            if i > 0:
                out = int(channels * cfg.compression)  # ⌊θ·m⌋
                parts.append(Transition(channels, out))
                channels, reduction = out, reduction * 2
            block = SparseBlock(channels, depth, growth, position=f"stages.{i}.{len(parts)}", op=op, **layer_kw)
            parts.append(block)
            channels = block.out_channels
            stages.append(nn.Sequential(*parts))
            self.feature_info.append(FeatureInfo(f"stages.{i}", channels, reduction))
        self.stages = nn.ModuleList(stages)
        self.final_norm = nn.Sequential(nn.BatchNorm2d(channels), nn.ReLU(inplace=True))
        self.head = ClassifierHead(channels, num_classes)
        init_dense_weights(self)


# S85's CIFAR table (official README, CIFAR-100 column): SparseNet-L-k, L = 3·layers + 4 (+3 more per block with
# bottlenecks, L = 6·layers + 4), stem 2·k of block 1. Counts are for 100 classes.
_SOURCE = "S85 CIFAR-100 table (Lyken17/SparseNet README): {}"
for _name, _layers, _growth, _bc, _params, _label in (
    ("sparsenet40_k24", 12, (24, 24, 24), False, 760_000, "SparseNet-40-24 0.76M"),
    ("sparsenet100_k36", 32, (36, 36, 36), False, 5_650_000, "SparseNet-100-36 5.65M"),
    ("sparsenet100_k16_32_64", 32, (16, 32, 64), False, 7_220_000, "SparseNet-100-{16,32,64} 7.22M"),
    ("sparsenet_bc100_k24", 16, (24, 24, 24), True, 1_460_000, "SparseNet-BC-100-24 1.46M"),
    ("sparsenet_bc100_k16_32_64", 16, (16, 32, 64), True, 4_380_000, "SparseNet-BC-100-{16,32,64} 4.38M"),
):
    register_variant(
        _name,
        SparseNet,
        SparseNetConfig(
            layers=(_layers,) * 3,
            growth_rates=_growth,
            stem_width=2 * _growth[0],
            bottleneck=_bc,
            compression=0.5 if _bc else 1.0,
        ),
        papers=("sparsenet",),
        params=_params,
        params_source=_SOURCE.format(_label),
        input_size=(3, 32, 32),
        num_classes=100,
        summary=f"{_label.rsplit(' ', 1)[0]} (S85): DenseNet layers aggregating outputs at offsets 1, 2, 4, … back",
        test_size=16,
    )
