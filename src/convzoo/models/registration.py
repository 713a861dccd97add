"""Registration of model variants and building them by name: ``register_variant``, ``create_model``, ``op=``.

A variant is a registration that fills its family's config dataclass (``register_variant``); ``create_model``
builds it with config overrides. ``op=`` builds the family with another registered operator in place of its
spatial-mixing convolution (``make_mixer``); a position the operator cannot honour raises a ``ValueError``
naming the model, the position and the reason.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

from torch import nn

from convzoo.core.validate import check_int
from convzoo.models.base import ConvNet, FeatureExtractor
from convzoo.ops.base import Op, create_op
from convzoo.registry import MODELS, OPS, WEIGHTS, ModelInfo

__all__ = ["register_variant", "create_model", "list_models", "make_mixer", "modules_inside_ops"]


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
    return {id(m) for op in model.modules() if isinstance(op, Op) for m in op.modules()}


def register_variant(
    name: str,
    family: type[ConvNet],
    config: Any,
    *,
    papers: tuple[str, ...],
    params: int | None,
    params_source: str,
    input_size: tuple[int, ...] = (3, 224, 224),
    summary: str,
    task: str = "classify",
    takes_op: bool = True,
    num_classes: int = 1000,
    test_size: int = 32,
    test_cfg: dict[str, Any] | None = None,
) -> None:
    """Register ``name`` as ``family(config)``; a ``task`` other than ``"classify"`` builds ``family(config)``
    with ``create_model``'s keyword overrides replacing config fields.

    ``params`` is the published parameter count for ``num_classes`` classes (the variant's
    default: 1000 for ImageNet models, 10 for CIFAR ones), and ``params_source`` says where it was
    published (paper table, official config or released weights). ``test_size`` is the smallest
    convenient input side for the contract tests, and ``test_cfg`` config overrides that make a
    forward/backward test cheap where the full model would be slow (e.g. fewer blocks); the
    published count is always checked on the registered config itself.
    """

    def build(**kwargs: Any) -> nn.Module:
        if task == "classify":  # create_model resolves the config and passes the classifier options
            return family(config, **kwargs)
        model = family(dataclasses.replace(config, **kwargs))  # other tasks: kwargs are config overrides
        model.name = name
        return model

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


def _check_config_fields(name: str, config: Any, overrides: dict[str, Any]) -> None:
    """``TypeError`` naming the model unless every key of ``overrides`` is a field of its config dataclass."""
    fields = {f.name for f in dataclasses.fields(config)}
    unknown = sorted(set(overrides) - fields)
    if unknown:
        raise TypeError(
            f"{name}: unknown config field(s) {', '.join(unknown)}; its config has {', '.join(sorted(fields))}"
        )


def create_model(
    name: str,
    *,
    num_classes: int | None = None,
    in_chans: int = 3,
    op: str | None = None,
    features_only: bool = False,
    pretrained: bool | str = False,
    **cfg: Any,
) -> nn.Module:
    """Build the registered model ``name``; ``cfg`` overrides fields of its config dataclass.

    ``num_classes`` defaults to the variant's own (1000 for ImageNet models, 10 for CIFAR ones).
    ``pretrained="timm"`` or ``"torchvision"`` (or ``"timm:ARCH"``) loads that package's released weights
    through its own loading and maps them (``convzoo.interop``, reached through the ``WEIGHTS`` registry; the
    mapping report is ``model.weights_report``); convzoo ships no weights of its own.

    >>> import torch
    >>> model = create_model("resnet18", num_classes=10)
    >>> model(torch.randn(1, 3, 64, 64)).shape
    torch.Size([1, 10])
    """
    entry = MODELS.get(name)
    _check_config_fields(name, entry.info.config, cfg)  # every kind: overrides name fields of its config
    if entry.kind != "classify":
        # sequence models and other tasks take their own config overrides only
        if num_classes is not None or in_chans != 3 or op is not None or features_only or pretrained:
            raise ValueError(f"{name}: a {entry.kind} model takes config overrides only, not classifier options")
        return entry.obj(**cfg)
    num_classes = entry.info.num_classes if num_classes is None else num_classes
    if pretrained is True or (pretrained and not isinstance(pretrained, str)):
        raise ValueError(f"{name}: pretrained must name a weights source ('timm' or 'torchvision'), got {pretrained}")
    if pretrained and (name not in WEIGHTS or op is not None or in_chans != 3 or cfg):
        why = "no timm or torchvision weights map onto it" if name not in WEIGHTS else "no op=, in_chans= or cfg"
        raise ValueError(f"{name}: pretrained={pretrained!r} takes the registered architecture as it is ({why})")
    check_int(num_classes, "num_classes", name, low=0)
    check_int(in_chans, "in_chans", name)
    config = dataclasses.replace(entry.info.config, **cfg) if cfg else entry.info.config
    if op is not None:
        OPS.get(op)  # an unknown op name fails with suggestions
        if not entry.info.takes_op:
            raise ValueError(f"{name}: takes no op= (it has no spatial-mixing convolution to replace)")
    try:
        model = entry.info.family(config, num_classes=num_classes, in_chans=in_chans, op=op)
    except ValueError as error:
        raise ValueError(f"{name}: {error}") from None
    model.name = name
    if pretrained:
        model.weights_report = WEIGHTS.get(name)(model, pretrained, num_classes=num_classes)
    return FeatureExtractor(model) if features_only else model


def list_models(pattern: str | None = None) -> list[str]:
    """Registered model names, sorted; ``pattern`` is a shell glob such as ``"resnet*"``."""
    return MODELS.names(pattern)
