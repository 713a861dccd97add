"""Inter-layer kernel sharing (S119, "Drastically Reducing the Number of Trainable Parameters in Deep CNNs by
Inter-layer Kernel-sharing"): isomorphic convolutions of one stage use a single weight ``Parameter``."""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from dataclasses import dataclass, field

from torch import nn
from torch.nn.utils import parametrize

from convzoo.models.base import FeatureExtractor
from convzoo.registry import TRANSFORMS

__all__ = ["TiedGroup", "SharingReport", "share_kernels"]

_CONVS = (nn.Conv1d, nn.Conv2d, nn.Conv3d)


@dataclass(frozen=True)
class TiedGroup:
    """Convolutions that now share one weight: ``owner`` keeps its Parameter, every name in ``tied`` uses it."""

    stage: str
    owner: str
    tied: tuple[str, ...]
    layer: str
    saved: int

    def __str__(self) -> str:
        return f"[{self.stage}] {self.layer}: {self.owner} ← {', '.join(self.tied)} (−{self.saved:,})"


@dataclass
class SharingReport:
    """What :func:`share_kernels` tied, and the parameters (each shared Parameter counted once) before and after."""

    params_before: int
    params_after: int
    groups: list[TiedGroup] = field(default_factory=list)

    @property
    def reduction(self) -> int:
        """Parameters removed: ``params_before − params_after``."""
        return self.params_before - self.params_after

    @property
    def ratio(self) -> float:
        """``params_after / params_before`` (1.0 when nothing was shared)."""
        return self.params_after / self.params_before if self.params_before else 1.0

    @property
    def tied(self) -> dict[str, str]:
        """Each tied conv's name → the name of the conv whose weight it now uses."""
        return {name: group.owner for group in self.groups for name in group.tied}

    def __str__(self) -> str:
        lines = [
            f"share_kernels: {len(self.groups)} group(s), {self.params_before:,} -> {self.params_after:,} parameters "
            f"(−{self.reduction:,}, {100 * (1 - self.ratio):.1f}%)"
        ]
        lines += [f"  {group}" for group in self.groups]
        return "\n".join(lines)


def _unique_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())  # parameters() yields a shared Parameter once


def _signature(conv: nn.Module) -> tuple[Hashable, ...]:
    """Everything that must agree for two convs to be isomorphic (interchangeable weights, same meaning)."""
    w = conv.weight
    return (
        type(conv),
        conv.in_channels,
        conv.out_channels,
        conv.kernel_size,
        conv.stride,
        conv.padding,
        conv.dilation,
        conv.groups,
        conv.padding_mode,
        conv.bias is not None,
        w.dtype,
        w.device,
        w.requires_grad,
    )


def _describe(conv: nn.Module) -> str:
    return (
        f"{type(conv).__name__}({conv.in_channels}, {conv.out_channels}, k={conv.kernel_size}, s={conv.stride}, "
        f"p={conv.padding}, d={conv.dilation}, g={conv.groups}, bias={conv.bias is not None})"
    )


def _regions(model: nn.Module, stages: Sequence[nn.Module] | None) -> dict[int, str]:
    """id(module) → the name of the region (stage) it belongs to; modules outside every region are absent."""
    target = model.model if isinstance(model, FeatureExtractor) else model
    if stages is None:
        found = getattr(target, "stages", None)
        if isinstance(found, (nn.ModuleList, nn.Sequential)):
            stages = list(found)
    region: dict[int, str] = {}
    if stages is not None:
        names = {id(m): n for n, m in model.named_modules()}
        for index, stage in enumerate(stages):
            if not isinstance(stage, nn.Module):
                raise TypeError(f"share_kernels: stages must be nn.Modules, got {type(stage).__name__} at {index}")
            label = names.get(id(stage), f"stage {index}")
            for m in stage.modules():
                region.setdefault(id(m), label)
        return region
    # no stages: the convs that are direct children of one module form a region
    for parent_name, parent in model.named_modules():
        for child in parent.children():
            region.setdefault(id(child), parent_name or "<root>")
    return region


@TRANSFORMS.register("share_kernels", kind="transform", papers=("kernel-sharing",))
def share_kernels(
    model: nn.Module, *, stages: Sequence[nn.Module] | None = None, share_bias: bool = True
) -> SharingReport:
    """Kernel sharing (S119, Azadbakht et al.): tie isomorphic convolutions within each stage, in place.

    Two ``nn.Conv{1,2,3}d`` layers are isomorphic when their weights are interchangeable: same type, in/out
    channels, kernel size, stride, padding (and padding mode), dilation, groups, bias presence, dtype, device and
    ``requires_grad``. (The paper asks only for the same kernel size and channels; the stricter test keeps each
    tied layer computing exactly what its own weight would.) Within a stage, every isomorphic conv after the first
    is given the first one's weight ``Parameter`` (and bias, with ``share_bias``, as the paper's ConvMixer does;
    its SE-ResNet convs have none); the first conv's values become the group's. Norms and everything else stay
    per-layer. Because the layers hold the very same Parameter, the shared kernel gets the sum of their gradients
    and stays tied through any optimizer step; build the optimizer *after* sharing.

    Stages: ``stages`` if given (modules of ``model``); else the ``stages`` container of a convzoo ``ConvNet``
    (``model.stages``, or ``model.model.stages`` under ``features_only``), or of any model with a ``stages``
    ``nn.ModuleList``/``nn.Sequential`` (as timm models have); convs outside the stages (stem, head) are left alone.
    Any other module: convs that are direct children of the same parent module form a stage (for a torchvision
    ResNet that is one residual block; pass ``stages=[m.layer1, m.layer2, m.layer3, m.layer4]`` for its stages).
    Convs under ``torch.nn.utils.parametrize`` (weight norm, spectral norm) are skipped.

    >>> from convzoo.models import create_model
    >>> report = share_kernels(create_model("resnet18"))
    >>> report.reduction  # 3·64²·9 + 2·128²·9 + 2·256²·9 + 2·512²·9
    6303744
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"share_kernels: expected an nn.Module, got {type(model).__name__}")
    if not isinstance(share_bias, bool):
        raise TypeError(f"share_kernels: share_bias must be a bool, got {share_bias!r}")
    before = _unique_params(model)
    region = _regions(model, stages)
    buckets: dict[tuple[str, tuple[Hashable, ...]], list[tuple[str, nn.Module]]] = {}
    for name, module in model.named_modules():
        if not isinstance(module, _CONVS) or id(module) not in region or parametrize.is_parametrized(module):
            continue
        if isinstance(module.weight, nn.parameter.UninitializedParameter):
            continue
        buckets.setdefault((region[id(module)], _signature(module)), []).append((name, module))
    groups = []
    for (stage, _), members in buckets.items():
        if len(members) < 2:
            continue
        owner_name, owner = members[0]
        shares_bias = share_bias and owner.bias is not None
        saved = 0
        for _, conv in members[1:]:
            if conv.weight is not owner.weight:
                saved += conv.weight.numel()
                conv.weight = owner.weight
            if shares_bias and conv.bias is not owner.bias:
                saved += conv.bias.numel()
                conv.bias = owner.bias
        tied = tuple(name for name, _ in members[1:])
        groups.append(TiedGroup(stage, owner_name, tied, _describe(owner), saved))
    return SharingReport(before, _unique_params(model), groups)
