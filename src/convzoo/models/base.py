"""The model contract: registration of variants, ``create_model``, the uniform classifier API.

A family is one ``nn.Module`` class plus a config dataclass; a variant is a registration that
fills the config (``register_variant``). Every classifier built here offers the same API:

- ``forward_stages(x)`` → the list of stage outputs (what ``features_only=True`` returns);
- ``forward_features(x)`` → the last feature map; ``forward_head(x, pre_logits=False)``;
- ``reset_classifier(num_classes)``; ``feature_info`` (one :class:`FeatureInfo` per stage).

``op=`` builds the family with another registered operator in place of its spatial-mixing
convolution (``make_mixer``); a position the operator cannot honour raises a ``ValueError``
naming the model, the position and the reason.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

from convzoo.ops.base import create_op
from convzoo.registry import MODELS, OPS, ModelInfo

__all__ = [
    "FeatureInfo",
    "ClassifierHead",
    "ConvNet",
    "Stage",
    "FeatureExtractor",
    "register_variant",
    "create_model",
    "list_models",
    "make_mixer",
    "count_params",
    "modules_inside_ops",
    "trunc_normal_init_",
    "meta_param_count",
    "meta_macs",
]


@dataclass(frozen=True)
class FeatureInfo:
    """One stage output: the module that produces it, its channels and its stride from the input."""

    module: str
    channels: int
    reduction: int


class ClassifierHead(nn.Module):
    """Global pool → optional norm → dropout → linear: the head of most classifiers.

    ``norm`` is applied to the pooled ``(N, C)`` vector (ConvNeXt's LayerNorm); ``hidden`` adds
    an MLP layer before the classifier (MetaFormer's ``MlpHead``).
    """

    def __init__(
        self,
        in_features: int,
        num_classes: int,
        *,
        norm: nn.Module | None = None,
        drop: float = 0.0,
        hidden: int | None = None,
        act: Callable[[], nn.Module] = nn.GELU,
    ) -> None:
        super().__init__()
        self.in_features = in_features
        self.norm = norm if norm is not None else nn.Identity()
        self.hidden = None
        if hidden is not None:
            self.hidden = nn.Sequential(nn.Linear(in_features, hidden), act(), nn.LayerNorm(hidden))
        self.drop = nn.Dropout(drop)
        self.fc: nn.Module = nn.Identity()
        self.reset(num_classes)

    def reset(self, num_classes: int) -> None:
        width = self.in_features if self.hidden is None else self.hidden[0].out_features
        self.fc = nn.Linear(width, num_classes) if num_classes > 0 else nn.Identity()

    def forward(self, x: Tensor, pre_logits: bool = False) -> Tensor:
        x = x.mean(dim=tuple(range(2, x.dim()))) if x.dim() > 2 else x  # (N, C)
        x = self.norm(x)
        if self.hidden is not None:
            x = self.hidden(x)
        x = self.drop(x)
        return x if pre_logits else self.fc(x)


class Stage(nn.Module):
    """A feature stage of the isotropic-block families: optional downsampling, then the blocks, ``(N, C, H, W)``."""

    def __init__(self, downsample: nn.Module | None, blocks: list[nn.Module]) -> None:
        super().__init__()
        self.downsample = downsample if downsample is not None else nn.Identity()
        self.blocks = nn.Sequential(*blocks)

    def forward(self, x: Tensor) -> Tensor:
        return self.blocks(self.downsample(x))


class ConvNet(nn.Module):
    """Base class of convzoo classifiers: ``stem`` → ``stages`` → ``head``.

    Subclasses build ``self.stem`` (a module), ``self.stages`` (an ``nn.ModuleList``, one entry
    per feature stage), ``self.head`` (with ``reset(num_classes)`` and ``forward(x, pre_logits)``,
    usually :class:`ClassifierHead`) and ``self.feature_info``; optionally ``self.final_norm``
    applied to the last stage output before the head.
    """

    name: str = "model"
    stem: nn.Module
    stages: nn.ModuleList
    head: nn.Module
    feature_info: list[FeatureInfo]

    def forward_stages(self, x: Tensor) -> list[Tensor]:
        x = self.stem(x)
        outputs = []
        for stage in self.stages:
            x = stage(x)
            outputs.append(x)
        return outputs

    def forward_features(self, x: Tensor) -> Tensor:
        x = self.forward_stages(x)[-1]
        # a registered submodule; no class-level default, which would hide it from attribute lookup
        final_norm = self._modules.get("final_norm")
        return x if final_norm is None else final_norm(x)

    def forward_head(self, x: Tensor, pre_logits: bool = False) -> Tensor:
        return self.head(x, pre_logits=pre_logits)

    def reset_classifier(self, num_classes: int) -> None:
        if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 0:
            raise ValueError(f"{self.name}: num_classes must be an int ≥ 0, got {num_classes!r}")
        self.head.reset(num_classes)

    def forward(self, x: Tensor) -> Tensor:
        return self.forward_head(self.forward_features(x))


class FeatureExtractor(nn.Module):
    """A classifier without its head (and final norm): ``forward`` returns the list of stage outputs."""

    def __init__(self, model: ConvNet) -> None:
        super().__init__()
        model.head = nn.Identity()
        model.final_norm = None
        self.model = model
        self.name = model.name
        self.feature_info = list(model.feature_info)

    def forward(self, x: Tensor) -> list[Tensor]:
        return self.model.forward_stages(x)


def make_mixer(
    position: str,
    op: str | None,
    default: Callable[[], nn.Module],
    in_channels: int,
    out_channels: int,
    kernel_size: int,
    stride: int = 1,
    *,
    dim: int = 2,
    bias: bool = False,
    **options: Any,
) -> nn.Module:
    """The spatial mixer at ``position``: ``default()`` when ``op`` is None, else ``create_op(op, ...)``.

    An operator that cannot stand at this position raises ``ValueError`` naming the position and
    the operator's own reason (``create_model`` prefixes the model name).
    """
    if op is None:
        return default()
    try:
        return create_op(op, in_channels, out_channels, kernel_size, stride, dim=dim, bias=bias, **options)
    except (ValueError, TypeError) as error:
        raise ValueError(f"op {op!r} cannot replace the conv at {position}: {error}") from None


def modules_inside_ops(model: nn.Module) -> set[int]:
    """``id`` of every module that belongs to a convzoo operator inside ``model`` (operators keep their own init)."""
    from convzoo.ops.base import Op

    return {id(m) for op in model.modules() if isinstance(op, Op) for m in op.modules()}


def trunc_normal_init_(
    model: nn.Module, *, std: float = 0.02, skip: set[int] = frozenset(), head_init_scale: float = 1.0
) -> None:
    """The ConvNeXt-era initialisation: conv and linear weights ~ N(0, std²) truncated to [-2, 2], biases zero.

    The bounds are absolute, as in the official code's ``trunc_normal_(w, std=.02)`` calls, so at std 0.02
    they cut nothing.

    Modules whose ``id`` is in ``skip`` keep theirs; the classifier (``model.head.fc``) is then scaled by
    ``head_init_scale``.
    """
    for m in model.modules():
        if isinstance(m, nn.Conv1d | nn.Conv2d | nn.Conv3d | nn.Linear) and id(m) not in skip:
            nn.init.trunc_normal_(m.weight, std=std)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
    fc = getattr(getattr(model, "head", None), "fc", None)
    if head_init_scale != 1.0 and isinstance(fc, nn.Linear):
        with torch.no_grad():
            fc.weight.mul_(head_init_scale)
            fc.bias.mul_(head_init_scale)


def count_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def register_variant(
    name: str,
    family: type[ConvNet],
    config: Any,
    *,
    papers: tuple[str, ...],
    params: int,
    params_source: str,
    input_size: tuple[int, ...] = (3, 224, 224),
    summary: str,
    task: str = "classify",
    takes_op: bool = True,
    num_classes: int = 1000,
    test_size: int = 32,
    test_cfg: dict[str, Any] | None = None,
) -> None:
    """Register ``name`` as ``family(config)``.

    ``params`` is the published parameter count for ``num_classes`` classes (the variant's
    default: 1000 for ImageNet models, 10 for CIFAR ones), and ``params_source`` says where it was
    published (paper table, official config or released weights). ``test_size`` is the smallest
    convenient input side for the contract tests, and ``test_cfg`` config overrides that make a
    forward/backward test cheap where the full model would be slow (e.g. fewer blocks); the
    published count is always checked on the registered config itself.
    """

    def build(**kwargs: Any) -> ConvNet:
        return family(config, **kwargs)

    build.__doc__ = summary
    info = ModelInfo(
        family=family,
        config=config,
        params=params,
        params_source=params_source,
        input_size=tuple(input_size),
        takes_op=takes_op,
        num_classes=num_classes,
        test_size=test_size,
        test_cfg=dict(test_cfg or {}),
    )
    MODELS.register(name, kind=task, dims=(len(input_size) - 1,), papers=papers, summary=summary, info=info)(build)


def create_model(
    name: str,
    *,
    num_classes: int | None = None,
    in_chans: int = 3,
    op: str | None = None,
    features_only: bool = False,
    pretrained: bool = False,
    **cfg: Any,
) -> nn.Module:
    """Build the registered model ``name``; ``cfg`` overrides fields of its config dataclass.

    ``num_classes`` defaults to the variant's own (1000 for ImageNet models, 10 for CIFAR ones).

    >>> model = create_model("resnet18", num_classes=10)
    >>> model(torch.randn(1, 3, 64, 64)).shape
    torch.Size([1, 10])
    """
    entry = MODELS.get(name)
    if entry.kind != "classify":
        # sequence models and other tasks take their own config overrides only
        if num_classes is not None or in_chans != 3 or op is not None or features_only or pretrained:
            raise ValueError(f"{name}: a {entry.kind} model takes config overrides only, not classifier options")
        return entry.obj(**cfg)
    num_classes = entry.info.num_classes if num_classes is None else num_classes
    if pretrained:
        raise ValueError(f"{name}: convzoo ships no pretrained weights; load a convzoo checkpoint instead")
    if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 0:
        raise ValueError(f"{name}: num_classes must be an int ≥ 0, got {num_classes!r}")
    if isinstance(in_chans, bool) or not isinstance(in_chans, int) or in_chans < 1:
        raise ValueError(f"{name}: in_chans must be a positive int, got {in_chans!r}")
    config = entry.info.config
    if cfg:
        fields = {f.name for f in dataclasses.fields(config)}
        unknown = sorted(set(cfg) - fields)
        if unknown:
            raise TypeError(
                f"{name}: unknown config field(s) {', '.join(unknown)}; its config has {', '.join(sorted(fields))}"
            )
        config = dataclasses.replace(config, **cfg)
    if op is not None:
        OPS.get(op)  # an unknown op name fails with suggestions
        if not entry.info.takes_op:
            raise ValueError(f"{name}: takes no op= (it has no spatial-mixing convolution to replace)")
    try:
        model = entry.info.family(config, num_classes=num_classes, in_chans=in_chans, op=op)
    except ValueError as error:
        raise ValueError(f"{name}: {error}") from None
    model.name = name
    return FeatureExtractor(model) if features_only else model


def list_models(pattern: str | None = None) -> list[str]:
    """Registered model names, sorted; ``pattern`` is a shell glob such as ``"resnet*"``."""
    return MODELS.names(pattern)


def meta_param_count(name: str, **kwargs: Any) -> int:
    """Parameters of the full-size model, built on the meta device (no memory, no initialisation cost)."""
    with torch.device("meta"):
        model = create_model(name, **kwargs)
    return count_params(model)


def meta_macs(name: str, input_size: tuple[int, ...] | None = None, **kwargs: Any) -> int:
    """Multiply-accumulates of one forward pass at ``input_size`` (default: the variant's), batch 1.

    Counted by ``torch.utils.flop_counter`` on the meta device: shapes only, nothing computed.
    """
    from torch.utils.flop_counter import FlopCounterMode

    size = MODELS.get(name).info.input_size if input_size is None else tuple(input_size)
    counter = FlopCounterMode(display=False)
    with torch.device("meta"):
        model = create_model(name, **kwargs).eval()
        with counter, torch.no_grad():
            model(torch.empty(1, *size))
    return counter.get_total_flops() // 2
