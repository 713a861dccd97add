"""What the dense-prediction families share: any registered classifier as a backbone, registration of the ``seg``
and ``disparity`` kinds, and the resampling that makes an output exactly the input's size.

A dense model's config dataclass carries ``backbone`` (a registered classifier), ``num_classes``, ``in_chans`` and
``op``; the backbone is built through ``create_model(backbone, features_only=True, op=op)``, so an ``op=`` swap
reaches every spatial convolution of the encoder. ``create_dense(name, num_classes=..., op=...)`` builds one
(``create_model`` itself takes config overrides only for non-classify kinds: ``create_model("fcn8s",
backbone="convnext_tiny")``).
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from convzoo.core.validate import check_int
from convzoo.models.registration import _check_config_fields, create_model, register_variant
from convzoo.registry import MODELS

__all__ = [
    "DENSE_KINDS",
    "Backbone",
    "Encoder",
    "NECKS",
    "register_dense",
    "create_dense",
    "fit_to",
    "resize_to",
    "bilinear_kernel",
    "LearnedUpsample",
    "ConvBNReLU",
]

DENSE_KINDS = ("seg", "disparity", "field")


class Backbone(nn.Module):
    """A registered classifier without its head: ``(N, C, H, W)`` → its stage outputs, one per ``feature_info``.

    ``channels`` and ``reductions`` are the stages' widths and strides from the input; ``op`` replaces the
    classifier's spatial convolutions (``create_model(..., op=op)``).
    """

    def __init__(self, name: str, *, in_chans: int = 3, op: str | None = None, owner: str = "dense model") -> None:
        super().__init__()
        entry = MODELS.get(name)
        if entry.kind != "classify":
            raise ValueError(f"{owner}: backbone must be a registered classifier, got {name!r} (a {entry.kind} model)")
        self.body = create_model(name, num_classes=0, in_chans=in_chans, op=op, features_only=True)
        self.channels = [f.channels for f in self.body.feature_info]
        self.reductions = [f.reduction for f in self.body.feature_info]

    def forward(self, x: Tensor) -> list[Tensor]:
        return self.body(x)


NECKS: dict[str, type[nn.Module]] = {}  # name → neck class(in_channels, channels); rcnet.py adds "rcnet"


class Encoder(nn.Module):
    """A :class:`Backbone`, optionally followed by a registered neck (``NECKS``) that keeps the stage sizes:
    ``(N, C, H, W)`` → the list of feature maps, finest first, with ``channels`` and ``reductions``."""

    def __init__(
        self,
        name: str,
        *,
        in_chans: int = 3,
        op: str | None = None,
        neck: str | None = None,
        neck_channels: int = 128,
        owner: str = "dense model",
    ) -> None:
        super().__init__()
        self.backbone = Backbone(name, in_chans=in_chans, op=op, owner=owner)
        self.channels, self.reductions = list(self.backbone.channels), list(self.backbone.reductions)
        self.neck: nn.Module | None = None
        if neck is not None:
            if neck not in NECKS:
                raise ValueError(f"{owner}: neck must be one of {', '.join(sorted(NECKS))} or None, got {neck!r}")
            self.neck = NECKS[neck](self.channels, neck_channels)
            self.channels = list(self.neck.channels)

    def forward(self, x: Tensor) -> list[Tensor]:
        features = self.backbone(x)
        return features if self.neck is None else self.neck(features)


def fit_to(x: Tensor, size: tuple[int, int]) -> Tensor:
    """``x`` (N, C, h, w) cropped from the top-left to ``size`` where larger, edge-replicated where smaller.

    A ×f transposed convolution of a map that the backbone rounded up is a little larger than the skip it joins
    (FCN's crop); one rounded down (floor pooling) is a row or column short, which replication fills.
    """
    h, w = size
    x = x[..., :h, :w]
    pad_h, pad_w = h - x.shape[-2], w - x.shape[-1]
    if pad_h or pad_w:
        x = F.pad(x, (0, pad_w, 0, pad_h), mode="replicate")
    return x


def resize_to(x: Tensor, size: tuple[int, int]) -> Tensor:
    """Bilinear resampling of ``x`` (N, C, h, w) to exactly ``size`` (half-pixel centres)."""
    if tuple(x.shape[-2:]) == tuple(size):
        return x
    return F.interpolate(x, size=size, mode="bilinear", align_corners=False)


def bilinear_kernel(channels: int, factor: int) -> Tensor:
    """``(channels, channels, 2f − f % 2, ...)`` transposed-conv weights that upsample each channel bilinearly ×f.

    FCN's initialisation of its learned upsampling ("initialized to bilinear interpolation", section 3.3).
    """
    size = 2 * factor - factor % 2
    centre = factor - 1 if size % 2 == 1 else factor - 0.5
    axis = 1 - torch.abs(torch.arange(size, dtype=torch.float64) - centre) / factor  # (size,)
    kernel = axis[:, None] * axis[None, :]  # (size, size)
    weight = torch.zeros(channels, channels, size, size, dtype=torch.float64)
    weight[range(channels), range(channels)] = kernel
    return weight.float()


class LearnedUpsample(nn.ConvTranspose2d):
    """×``factor`` transposed convolution initialised to bilinear upsampling, no bias: ``(N, C, h, w)`` →
    ``(N, C, ~f·h, ~f·w)`` (exact size set by :func:`fit_to`)."""

    def __init__(self, channels: int, factor: int) -> None:
        size = 2 * factor - factor % 2
        super().__init__(channels, channels, size, stride=factor, padding=math.ceil((factor - 1) / 2), bias=False)
        self.factor = factor
        with torch.no_grad():
            self.weight.copy_(bilinear_kernel(channels, factor))


class ConvBNReLU(nn.Sequential):
    """``k×k`` conv (no bias) → BatchNorm → ReLU, same padding: the decoders' basic unit."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 3, stride: int = 1) -> None:
        super().__init__(
            nn.Conv2d(in_channels, out_channels, kernel_size, stride, kernel_size // 2, bias=False),
            nn.BatchNorm2d(out_channels),
            nn.ReLU(inplace=True),
        )


def register_dense(
    name: str,
    family: type[nn.Module],
    config: Any,
    *,
    papers: tuple[str, ...],
    params: int | None,
    params_source: str,
    summary: str,
    kind: str = "seg",
    input_size: tuple[int, ...] = (3, 64, 64),
    test_size: int = 64,
) -> None:
    """Register ``name`` as ``family(config)`` of kind ``kind`` (``"seg"``, ``"disparity"`` or ``"field"``); keyword
    overrides replace config fields."""
    if kind not in DENSE_KINDS:
        raise ValueError(f"register_dense: kind must be one of {', '.join(DENSE_KINDS)}, got {kind!r}")
    register_variant(
        name,
        family,
        config,
        papers=papers,
        params=params,
        params_source=params_source,
        input_size=input_size,
        summary=summary,
        task=kind,
        takes_op=False,
        num_classes=0,
        test_size=test_size,
    )


def create_dense(name: str, **cfg: Any) -> nn.Module:
    """Build the registered dense model ``name`` with config overrides (``num_classes``, ``in_chans``, ``op``,
    ``backbone``, ...); a classifier or another kind of model raises naming the dense models."""
    entry = MODELS.get(name)
    if entry.kind not in DENSE_KINDS:
        dense = ", ".join(e.name for e in MODELS.entries() if e.kind in DENSE_KINDS)
        raise ValueError(f"create_dense: {name!r} is a {entry.kind} model, not a dense one ({dense})")
    _check_config_fields(name, entry.info.config, cfg)
    if "num_classes" in cfg:
        check_int(cfg["num_classes"], "num_classes", name)
    if "in_chans" in cfg:
        check_int(cfg["in_chans"], "in_chans", name)
    return entry.obj(**cfg)
