"""Once-for-all MobileNetV3 supernet (S113, deps; Annavajjala, Khare et al. 2024, "DεpS: Delayed ε-Shrinking for
Faster Once-For-All Training", on the OFA search space of Cai et al. 2020): elastic kernel size, width (expand
ratio) and depth, whose subnets run without retraining.

Images ``(N, C, H, W)`` → logits ``(N, classes)``. Layout (OFA-MobileNetV3): stem ``3×3 conv (stride
stem_stride) → BN → h-swish``, a fixed depthwise-separable block (3×3, expand 1, ReLU, residual), then one stage
per entry of ``widths``: up to ``max(depth_choices)`` inverted-bottleneck blocks (1×1 expand → BN → act →
depthwise k×k → BN → act → [squeeze-excite] → 1×1 project → BN, residual when the stride is 1 and the widths
agree; the first block of a stage has the stage's stride), then the head ``1×1 conv to final_expand·widths[-1]
→ BN → h-swish → global pool → 1×1 conv to feature_mix → h-swish → dropout → linear``.

The supernet holds the largest of every choice. A subnet (:class:`SubnetConfig`) picks per block a kernel size
and an expand ratio, and per stage a depth:

- **elastic kernel**: the ``k×k`` depthwise kernel is the centre ``k×k`` of the next larger kernel (itself
  derived the same way, from the stored ``max×max`` one) mapped by a learned ``k²×k²`` matrix per block and
  transition (7→5, 5→3), shared by every channel and initialised to the identity (:func:`elastic_kernel`);
  ``kernel_transform=False`` takes plain centre crops (the official DεpS code's setting, whose runs fix k);
- **elastic width**: ``mid = make_divisible(in · e, 8)`` leading channels of the expand conv, its BN, the
  depthwise kernel, the squeeze-excite (first ``make_divisible(mid / 4, 8)`` reduced channels) and the project
  conv's inputs; :meth:`OFASupernet.sort_channels` reorders the middle channels by importance (L1 norm of the
  project weights; the SE's reduced channels by the L1 norm of its expand weights) so that the leading ones are
  the most important, leaving the largest subnet's function unchanged;
- **elastic depth**: the first ``d`` blocks of each stage.

:meth:`OFASupernet.subnet` extracts a standalone :class:`OFASubnet` of plain convolutions (kernels transformed,
channels sliced, BN statistics copied) that computes what the supernet computes under that config;
:meth:`OFASupernet.subnet_macs` counts its MACs analytically (equal to ``convzoo.profile.count_macs``, tested) and
:meth:`OFASupernet.sample` draws uniform random subnets, optionally under a MACs budget. Training (the DεpS
schedule) is the ``deps`` task, ``convzoo.train.tasks.deps``.

Variants: ``ofa_mbv3`` is OFA's ImageNet space (widths 24-40-80-112-160, kernels 3/5/7, expand 3/4/6, depth
2/3/4, head 960→1280); the DεpS paper's ImageNet MobileNetV3 run fixes the kernel at 7 (``kernel_choices=(7,)``)
with the same width and depth choices. ``ofa_mbv3_small`` is convzoo's small space for 32×32 inputs (three
stages 24-40-80 at 8×8, 4×4 and 2×2, depth 2/3, head 480→512) that trains on digits in minutes. Departures: OFA's
``width_mult`` (1.0/1.2 whole-net widths) and elastic input resolution are not built; no published parameter
count is compared (OFA reports its subnets' counts, not the supernet's).
"""

from __future__ import annotations

import copy
import math
import random
from dataclasses import dataclass, replace
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from convzoo.core.validate import check_choice, check_int, check_number
from convzoo.registry import MODELS, ModelInfo

__all__ = [
    "MBConv",
    "OFAConfig",
    "OFASubnet",
    "OFASupernet",
    "SubnetConfig",
    "ElasticMBConv",
    "elastic_kernel",
    "make_divisible",
]


def make_divisible(value: float, divisor: int = 8) -> int:
    """``value`` rounded to the nearest multiple of ``divisor`` (at least ``divisor``), never below 90 % of it."""
    rounded = max(divisor, int(value + divisor / 2) // divisor * divisor)
    return rounded + divisor if rounded < 0.9 * value else rounded


def _centre(kernel: Tensor, size: int) -> Tensor:
    """The centre ``size×size`` window of ``(..., K, K)`` kernels."""
    start = (kernel.shape[-1] - size) // 2
    return kernel[..., start : start + size, start : start + size]


def elastic_kernel(weight: Tensor, size: int, sizes: tuple[int, ...], matrices: dict[str, Tensor]) -> Tensor:
    """OFA's kernel transformation: ``(C, 1, K, K)`` depthwise kernels (``K = max(sizes)``) → ``(C, 1, size, size)``.

    From ``K`` down to ``size`` through every smaller entry of ``sizes``, each step takes the centre ``t×t`` of
    the current ``s×s`` kernel, flattens it per channel to ``t²`` values ``v`` and maps it to ``M_{s→t} v``
    (``matrices[f"{s}to{t}"]``, ``(t², t²)``, shared by the channels). Without ``matrices`` (the official DεpS
    and BigNAS setting) the kernel is the plain centre ``size×size`` of the stored one.
    """
    if not matrices:
        return _centre(weight, size)
    ordered = sorted(sizes, reverse=True)
    kernel = weight
    for source, target in zip(ordered, ordered[1:], strict=False):
        if source <= size:
            break
        window = _centre(kernel, target)  # (C, 1, t, t)
        flat = window.reshape(window.shape[0], target * target)  # (C, t²)
        kernel = F.linear(flat, matrices[f"{source}to{target}"]).reshape(window.shape)  # (C, 1, t, t)
    return kernel


@dataclass(frozen=True)
class SubnetConfig:
    """One subnet: a ``kernel`` size and an ``expand`` ratio for every block of the supernet (``stages ×
    max depth`` entries, stage by stage; those of blocks beyond a stage's depth are unused) and a ``depth`` per
    stage."""

    kernel: tuple[int, ...]
    expand: tuple[int, ...]
    depth: tuple[int, ...]

    def as_dict(self) -> dict[str, list[int]]:
        return {"kernel": list(self.kernel), "expand": list(self.expand), "depth": list(self.depth)}

    @classmethod
    def from_dict(cls, record: dict[str, Any]) -> SubnetConfig:
        return cls(tuple(record["kernel"]), tuple(record["expand"]), tuple(record["depth"]))


@dataclass(frozen=True)
class OFAConfig:
    classes: int = 1000
    in_channels: int = 3
    stem: int = 16
    stem_stride: int = 2
    widths: tuple[int, ...] = (24, 40, 80, 112, 160)
    strides: tuple[int, ...] = (2, 2, 2, 1, 2)
    se: tuple[bool, ...] = (False, True, False, True, True)
    hswish: tuple[bool, ...] = (False, False, True, True, True)
    kernel_choices: tuple[int, ...] = (3, 5, 7)
    expand_choices: tuple[int, ...] = (3, 4, 6)
    depth_choices: tuple[int, ...] = (2, 3, 4)
    final_expand: int = 6
    feature_mix: int = 1280
    dropout: float = 0.1
    kernel_transform: bool = True  # OFA's learned k²×k² matrices; False: plain centre crops (DεpS's own runs)


def _act(hswish: bool) -> nn.Module:
    return nn.Hardswish() if hswish else nn.ReLU()


def _norm(x: Tensor, bn: nn.BatchNorm2d, channels: int) -> Tensor:
    """``bn`` on the first ``channels`` channels: its leading weights and running statistics (updated in place)."""
    if channels == bn.num_features:
        return bn(x)
    use_batch = bn.training or bn.running_mean is None
    return F.batch_norm(
        x,
        bn.running_mean[:channels] if bn.running_mean is not None else None,
        bn.running_var[:channels] if bn.running_var is not None else None,
        bn.weight[:channels],
        bn.bias[:channels],
        use_batch,
        bn.momentum if bn.momentum is not None else 0.0,
        bn.eps,
    )


class SqueezeExcite(nn.Module):
    """MobileNetV3 squeeze-excite: ``x · h-sigmoid(W₂ ReLU(W₁ mean(x)))`` on ``(N, C, H, W)``."""

    def __init__(self, channels: int, reduced: int) -> None:
        super().__init__()
        self.reduce = nn.Conv2d(channels, reduced, 1)
        self.expand = nn.Conv2d(reduced, channels, 1)

    def forward(self, x: Tensor) -> Tensor:
        gate = self.expand(F.relu(self.reduce(x.mean((2, 3), keepdim=True))))  # (N, C, 1, 1)
        return x * F.hardsigmoid(gate)


class MBConv(nn.Module):
    """A plain inverted-bottleneck block ``(N, C_in, H, W) → (N, C_out, H/s, W/s)``; ``mid=None`` has no expand
    conv (expand ratio 1)."""

    def __init__(
        self, in_ch: int, out_ch: int, mid: int | None, kernel: int, stride: int, se: bool, hswish: bool
    ) -> None:
        super().__init__()
        width = in_ch if mid is None else mid
        self.expand = None
        if mid is not None:
            self.expand = nn.Sequential(nn.Conv2d(in_ch, mid, 1, bias=False), nn.BatchNorm2d(mid), _act(hswish))
        self.depthwise = nn.Sequential(
            nn.Conv2d(width, width, kernel, stride, kernel // 2, groups=width, bias=False),
            nn.BatchNorm2d(width),
            _act(hswish),
        )
        self.se = SqueezeExcite(width, make_divisible(width / 4)) if se else None
        self.project = nn.Sequential(nn.Conv2d(width, out_ch, 1, bias=False), nn.BatchNorm2d(out_ch))
        self.residual = stride == 1 and in_ch == out_ch

    def forward(self, x: Tensor) -> Tensor:
        h = x if self.expand is None else self.expand(x)
        h = self.depthwise(h)
        if self.se is not None:
            h = self.se(h)
        h = self.project(h)
        return x + h if self.residual else h


class ElasticMBConv(nn.Module):
    """The supernet's inverted-bottleneck block at its largest (expand ``max(expand_choices)``, kernel
    ``max(kernel_choices)``), run at any ``(kernel, expand)`` by :meth:`forward` and extracted by :meth:`export`."""

    def __init__(
        self,
        in_ch: int,
        out_ch: int,
        stride: int,
        se: bool,
        hswish: bool,
        kernel_choices: tuple[int, ...],
        expand_choices: tuple[int, ...],
        kernel_transform: bool = True,
    ) -> None:
        super().__init__()
        self.in_ch, self.out_ch, self.stride, self.hswish = in_ch, out_ch, stride, hswish
        self.kernel_choices = tuple(sorted(kernel_choices))
        biggest, mid = max(kernel_choices), self.mid(max(expand_choices))
        self.expand_conv = nn.Conv2d(in_ch, mid, 1, bias=False)
        self.expand_bn = nn.BatchNorm2d(mid)
        self.depthwise = nn.Parameter(torch.empty(mid, 1, biggest, biggest))
        nn.init.kaiming_normal_(self.depthwise, mode="fan_out")
        ordered = sorted(kernel_choices, reverse=True) if kernel_transform else []
        self.transforms = nn.ParameterDict(
            {f"{s}to{t}": nn.Parameter(torch.eye(t * t)) for s, t in zip(ordered, ordered[1:], strict=False)}
        )
        self.depthwise_bn = nn.BatchNorm2d(mid)
        self.se = SqueezeExcite(mid, make_divisible(mid / 4)) if se else None
        self.project_conv = nn.Conv2d(mid, out_ch, 1, bias=False)
        self.project_bn = nn.BatchNorm2d(out_ch)
        self.residual = stride == 1 and in_ch == out_ch

    def mid(self, expand: int) -> int:
        """Middle channels at expand ratio ``expand``."""
        return make_divisible(round(self.in_ch * expand))

    def kernel(self, size: int, channels: int) -> Tensor:
        """The ``(channels, 1, size, size)`` depthwise kernel of the leading ``channels`` channels."""
        return elastic_kernel(self.depthwise[:channels], size, self.kernel_choices, dict(self.transforms))

    def _se(self, h: Tensor, mid: int) -> Tensor:
        reduced = make_divisible(mid / 4)
        gate = h.mean((2, 3), keepdim=True)  # (N, mid, 1, 1)
        gate = F.relu(F.conv2d(gate, self.se.reduce.weight[:reduced, :mid], self.se.reduce.bias[:reduced]))
        gate = F.conv2d(gate, self.se.expand.weight[:mid, :reduced], self.se.expand.bias[:mid])
        return h * F.hardsigmoid(gate)

    def forward(self, x: Tensor, kernel: int, expand: int) -> Tensor:
        mid, act = self.mid(expand), (F.hardswish if self.hswish else F.relu)
        h = act(_norm(F.conv2d(x, self.expand_conv.weight[:mid]), self.expand_bn, mid))  # (N, mid, H, W)
        h = F.conv2d(h, self.kernel(kernel, mid), None, self.stride, kernel // 2, 1, mid)  # (N, mid, H/s, W/s)
        h = act(_norm(h, self.depthwise_bn, mid))
        if self.se is not None:
            h = self._se(h, mid)
        h = self.project_bn(F.conv2d(h, self.project_conv.weight[:, :mid]))
        return x + h if self.residual else h

    @torch.no_grad()
    def export(self, kernel: int, expand: int) -> MBConv:
        """A standalone :class:`MBConv` computing :meth:`forward` at ``(kernel, expand)`` (copied weights)."""
        mid = self.mid(expand)
        block = MBConv(self.in_ch, self.out_ch, mid, kernel, self.stride, self.se is not None, self.hswish)
        block.to(self.depthwise.device, self.depthwise.dtype)
        block.expand[0].weight.copy_(self.expand_conv.weight[:mid])
        block.depthwise[0].weight.copy_(self.kernel(kernel, mid))
        block.project[0].weight.copy_(self.project_conv.weight[:, :mid])
        _copy_norm(block.expand[1], self.expand_bn, mid)
        _copy_norm(block.depthwise[1], self.depthwise_bn, mid)
        _copy_norm(block.project[1], self.project_bn, self.out_ch)
        if self.se is not None:
            reduced = block.se.reduce.out_channels
            block.se.reduce.weight.copy_(self.se.reduce.weight[:reduced, :mid])
            block.se.reduce.bias.copy_(self.se.reduce.bias[:reduced])
            block.se.expand.weight.copy_(self.se.expand.weight[:mid, :reduced])
            block.se.expand.bias.copy_(self.se.expand.bias[:mid])
        return block

    @torch.no_grad()
    def sort_channels(self) -> None:
        """Reorder the middle channels by importance (L1 norm of the project conv's weights over each channel),
        most important first; the SE's reduced channels likewise by the L1 norm of its expand weights. The
        block's function at its largest setting is unchanged."""
        order = self.project_conv.weight.abs().sum((0, 2, 3)).argsort(descending=True)
        self.expand_conv.weight.copy_(self.expand_conv.weight[order])
        self.depthwise.copy_(self.depthwise[order])
        self.project_conv.weight.copy_(self.project_conv.weight[:, order])
        for bn in (self.expand_bn, self.depthwise_bn):
            for tensor in (bn.weight, bn.bias, bn.running_mean, bn.running_var):
                tensor.copy_(tensor[order])
        if self.se is not None:
            se = self.se
            se.reduce.weight.copy_(se.reduce.weight[:, order])
            se.expand.weight.copy_(se.expand.weight[order])
            se.expand.bias.copy_(se.expand.bias[order])
            reduced = se.expand.weight.abs().sum((0, 2, 3)).argsort(descending=True)
            se.expand.weight.copy_(se.expand.weight[:, reduced])
            se.reduce.weight.copy_(se.reduce.weight[reduced])
            se.reduce.bias.copy_(se.reduce.bias[reduced])


def _copy_norm(target: nn.BatchNorm2d, source: nn.BatchNorm2d, channels: int) -> None:
    for name in ("weight", "bias", "running_mean", "running_var"):
        getattr(target, name).copy_(getattr(source, name)[:channels])
    target.num_batches_tracked.copy_(source.num_batches_tracked)
    target.eps, target.momentum = source.eps, source.momentum


class _Head(nn.Module):
    """``(N, C, H, W)`` → 1×1 conv → BN → h-swish → global pool → 1×1 conv → h-swish → dropout → linear → ``(N, K)``."""

    def __init__(self, in_ch: int, final: int, mix: int, num_classes: int, dropout: float) -> None:
        super().__init__()
        self.expand = nn.Sequential(nn.Conv2d(in_ch, final, 1, bias=False), nn.BatchNorm2d(final), nn.Hardswish())
        self.mix = nn.Sequential(nn.Conv2d(final, mix, 1, bias=False), nn.Hardswish())
        self.drop = nn.Dropout(dropout)
        self.fc = nn.Linear(mix, num_classes)

    def forward(self, x: Tensor) -> Tensor:
        pooled = self.expand(x).mean((2, 3), keepdim=True)  # (N, final, 1, 1)
        return self.fc(self.drop(self.mix(pooled).flatten(1)))  # (N, K)


class OFASubnet(nn.Module):
    """A standalone subnet extracted from an :class:`OFASupernet`: stem, its blocks, head; ``(N, C, H, W) → (N, K)``."""

    def __init__(self, stem: nn.Module, blocks: list[nn.Module], head: nn.Module, config: SubnetConfig) -> None:
        super().__init__()
        self.stem, self.blocks, self.head = stem, nn.Sequential(*blocks), head
        self.config = config

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.blocks(self.stem(x)))


class OFASupernet(nn.Module):
    """The once-for-all supernet; see the module docstring. ``forward`` runs the active subnet
    (:meth:`set_active`, the largest by default)."""

    def __init__(self, config: OFAConfig) -> None:
        super().__init__()
        owner = "ofa supernet"
        stages = len(config.widths)
        if not (len(config.strides) == len(config.se) == len(config.hswish) == stages) or stages == 0:
            raise ValueError(
                f"{owner}: widths, strides, se and hswish need one entry per stage, got {len(config.widths)}, "
                f"{len(config.strides)}, {len(config.se)}, {len(config.hswish)}"
            )
        for size in config.kernel_choices:
            if not (isinstance(size, int) and size >= 1 and size % 2 == 1):
                raise ValueError(f"{owner}: kernel_choices must be odd ints ≥ 1, got {config.kernel_choices!r}")
        for name in ("expand_choices", "depth_choices"):
            values = getattr(config, name)
            if not values:
                raise ValueError(f"{owner}: {name} must name at least one choice, got {values!r}")
            for value in values:
                check_int(value, name, owner)
        for name in ("classes", "in_channels", "stem", "stem_stride", "final_expand", "feature_mix"):
            check_int(getattr(config, name), name, owner)
        check_number(config.dropout, "dropout", owner, low=0.0, low_open=False, high=1.0, high_open=True)
        self.config = config
        self.max_depth = max(config.depth_choices)
        self.stem = nn.Sequential(
            nn.Conv2d(config.in_channels, config.stem, 3, config.stem_stride, 1, bias=False),
            nn.BatchNorm2d(config.stem),
            nn.Hardswish(),
        )
        self.first = MBConv(config.stem, config.stem, None, 3, 1, False, False)
        self.stages = nn.ModuleList()
        in_ch = config.stem
        for width, stride, se, hswish in zip(config.widths, config.strides, config.se, config.hswish, strict=True):
            check_int(width, "widths", owner)
            blocks = [
                ElasticMBConv(
                    in_ch if i == 0 else width,
                    width,
                    stride if i == 0 else 1,
                    se,
                    hswish,
                    config.kernel_choices,
                    config.expand_choices,
                    config.kernel_transform,
                )
                for i in range(self.max_depth)
            ]
            self.stages.append(nn.ModuleList(blocks))
            in_ch = width
        final = config.final_expand * config.widths[-1]
        self.head = _Head(config.widths[-1], final, config.feature_mix, config.classes, config.dropout)
        self.register_buffer("channels_sorted", torch.zeros((), dtype=torch.bool))
        self.active = self.largest()
        self.progress = 0.0

    # --- the space --------------------------------------------------------------------------------------------

    @property
    def num_blocks(self) -> int:
        return len(self.stages) * self.max_depth

    def largest(self) -> SubnetConfig:
        c = self.config
        blocks, stages = self.num_blocks, len(self.stages)
        return SubnetConfig(
            (max(c.kernel_choices),) * blocks, (max(c.expand_choices),) * blocks, (self.max_depth,) * stages
        )

    def smallest(self) -> SubnetConfig:
        c = self.config
        blocks, stages = self.num_blocks, len(self.stages)
        low = min(c.depth_choices)
        return SubnetConfig((min(c.kernel_choices),) * blocks, (min(c.expand_choices),) * blocks, (low,) * stages)

    def check(self, config: SubnetConfig) -> SubnetConfig:
        """``config`` if every entry is one of the space's choices; ``ValueError`` naming the entry otherwise."""
        if not isinstance(config, SubnetConfig):
            raise TypeError(f"ofa supernet: a subnet is a SubnetConfig, got {type(config).__name__}")
        lengths = (("kernel", self.num_blocks), ("expand", self.num_blocks), ("depth", len(self.stages)))
        for name, length in lengths:
            values = getattr(config, name)
            if len(values) != length:
                raise ValueError(f"ofa supernet: {name} needs {length} entries, got {len(values)}: {values!r}")
            choices = getattr(self.config, f"{name}_choices")
            for i, value in enumerate(values):
                check_choice(value, choices, f"{name}[{i}]", "ofa supernet")
        return config

    def sample(self, generator: torch.Generator | random.Random | None = None) -> SubnetConfig:
        """A uniformly random subnet (each entry drawn independently), from ``generator`` (a torch generator, a
        ``random.Random``, or torch's global generator when None)."""

        def pick(choices: tuple[int, ...], count: int) -> tuple[int, ...]:
            if isinstance(generator, random.Random):
                return tuple(generator.choice(choices) for _ in range(count))
            index = torch.randint(len(choices), (count,), generator=generator)
            return tuple(choices[i] for i in index.tolist())

        c = self.config
        return SubnetConfig(
            pick(c.kernel_choices, self.num_blocks),
            pick(c.expand_choices, self.num_blocks),
            pick(c.depth_choices, len(self.stages)),
        )

    def sample_under(
        self,
        budget: int,
        image_size: tuple[int, int],
        generator: torch.Generator | random.Random | None = None,
        *,
        tries: int = 1000,
    ) -> SubnetConfig:
        """A random subnet of at most ``budget`` MACs at ``image_size`` (rejection sampling, as OFA's search
        draws its valid samples); ``ValueError`` when even the smallest exceeds it."""
        check_int(budget, "budget", "ofa supernet", low=0)
        floor = self.subnet_macs(self.smallest(), image_size)
        if floor > budget:
            raise ValueError(f"ofa supernet: the smallest subnet needs {floor:,} MACs, over the budget {budget:,}")
        for _ in range(tries):
            config = self.sample(generator)
            if self.subnet_macs(config, image_size) <= budget:
                return config
        return self.smallest()

    def subnet_macs(self, config: SubnetConfig, image_size: tuple[int, int]) -> int:
        """Multiply-accumulates of one image through the subnet ``config`` at ``image_size`` (convs and linear)."""
        self.check(config)
        c = self.config
        height, width = (math.ceil(s / c.stem_stride) for s in image_size)
        total = c.in_channels * c.stem * 9 * height * width
        total += c.stem * 9 * height * width + c.stem * c.stem * height * width  # the fixed first block
        for stage, blocks in enumerate(self.stages):
            for i, block in enumerate(blocks[: config.depth[stage]]):
                index = stage * self.max_depth + i
                mid, k = block.mid(config.expand[index]), config.kernel[index]
                total += block.in_ch * mid * height * width
                height, width = math.ceil(height / block.stride), math.ceil(width / block.stride)
                total += mid * k * k * height * width + mid * block.out_ch * height * width
                if block.se is not None:
                    total += 2 * mid * make_divisible(mid / 4)
        final = c.final_expand * c.widths[-1]
        return total + c.widths[-1] * final * height * width + final * c.feature_mix + c.feature_mix * c.classes

    # --- running and extracting ----------------------------------------------------------------------------------

    def set_active(self, config: SubnetConfig) -> None:
        """Make ``config`` the subnet that ``forward`` runs."""
        self.active = self.check(config)

    def set_training_progress(self, fraction: float) -> None:
        """Training progress in [0, 1], told by ``convzoo.train`` before every step (read by the ``deps`` task)."""
        self.progress = float(fraction)

    def _blocks(self, config: SubnetConfig):
        for stage, blocks in enumerate(self.stages):
            for i, block in enumerate(blocks[: config.depth[stage]]):
                index = stage * self.max_depth + i
                yield block, config.kernel[index], config.expand[index]

    def forward(self, x: Tensor) -> Tensor:
        h = self.first(self.stem(x))  # (N, stem, H/s, W/s)
        for block, kernel, expand in self._blocks(self.active):
            h = block(h, kernel, expand)
        return self.head(h)  # (N, K)

    def subnet(self, config: SubnetConfig) -> OFASubnet:
        """A standalone copy of the subnet ``config`` (plain convolutions, no elastic machinery), in the supernet's
        train/eval mode, on its device and dtype. Torch's global random state is left as it was (the new modules'
        throwaway initialisation draws from a forked generator)."""
        self.check(config)
        with torch.random.fork_rng(devices=[]):
            blocks = [copy.deepcopy(self.first)] + [b.export(k, e) for b, k, e in self._blocks(config)]
        net = OFASubnet(copy.deepcopy(self.stem), blocks, copy.deepcopy(self.head), config)
        return net.train(self.training)

    @torch.no_grad()
    def sort_channels(self) -> None:
        """Sort every elastic block's middle channels by importance (:meth:`ElasticMBConv.sort_channels`)."""
        for blocks in self.stages:
            for block in blocks:
                block.sort_channels()
        self.channels_sorted.fill_(True)


SMALL = OFAConfig(
    classes=10,
    stem_stride=2,
    widths=(24, 40, 80),
    strides=(2, 2, 2),
    se=(False, True, True),
    hswish=(False, True, True),
    depth_choices=(2, 3),
    feature_mix=512,
)


def _register(name: str, config: OFAConfig, input_size: tuple[int, ...], summary: str) -> None:
    def build(**overrides: Any) -> OFASupernet:
        model = OFASupernet(replace(config, **overrides))
        model.name = name
        return model

    build.__doc__ = summary
    MODELS.register(
        name,
        kind="supernet",
        dims=(2,),
        papers=("deps",),
        summary=summary,
        info=ModelInfo(
            family=OFASupernet,
            config=config,
            input_size=input_size,
            takes_op=False,
            num_classes=config.classes,
            test_size=32,
        ),
    )(build)


_register(
    "ofa_mbv3",
    OFAConfig(),
    (3, 224, 224),
    "S113 once-for-all MobileNetV3 supernet (OFA space: kernel 3/5/7, expand 3/4/6, depth 2/3/4) for DεpS training",
)
_register(
    "ofa_mbv3_small",
    SMALL,
    (3, 32, 32),
    "S113 small once-for-all MobileNetV3 supernet for 32×32 inputs (3 stages, depth 2/3) for DεpS training",
)
