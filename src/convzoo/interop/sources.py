"""Weights from timm and torchvision: load a source model or state dict into the matching convzoo model.

>>> from convzoo.interop import PAIRS
>>> sorted({p.source for p in PAIRS})
['timm', 'torchvision']

:func:`load_weights` maps a source model (or its ``state_dict()``) you already have; :func:`load_pretrained` asks
timm or torchvision for their released weights through their own loading (their caches; a first use downloads)
and is what ``create_model(name, pretrained="timm")`` calls, through the ``WEIGHTS`` registry. Neither package
is a dependency of convzoo: install the ``ecosystem`` extra.
"""

from __future__ import annotations

import dataclasses
import importlib
from collections.abc import Mapping
from typing import Any

from torch import Tensor, nn

from convzoo.interop.mapping import InteropReport, Pair, map_state
from convzoo.interop.pairs import PAIRS, pairs_for
from convzoo.registry import WEIGHTS

__all__ = ["load_weights", "load_pretrained", "source_model", "find_pair", "weight_sources"]

SOURCES = ("timm", "torchvision")


def weight_sources() -> dict[str, list[str]]:
    """convzoo model name → the ``"source:arch"`` specs it can load weights from."""
    out: dict[str, list[str]] = {}
    for pair in PAIRS:
        out.setdefault(pair.model, []).append(pair.spec)
    return out


def find_pair(model: str, spec: str) -> Pair:
    """The pair of convzoo ``model`` named by ``spec``: ``"timm"``, ``"torchvision"`` (the first such pair) or
    ``"source:arch"``. Raises ``ValueError`` naming what the model has."""
    candidates = pairs_for(model)
    if not candidates:
        have = ", ".join(sorted(weight_sources()))
        raise ValueError(f"{model}: no timm or torchvision weights map onto it; models that have them: {have}")
    source, _, arch = spec.partition(":")
    for pair in candidates:
        if pair.source == source and (not arch or pair.arch == arch):
            return pair
    specs = ", ".join(repr(p.spec) for p in candidates)
    raise ValueError(f"{model}: weights source must be one of {specs} (or just the source name), got {spec!r}")


def _import(source: str) -> Any:
    try:
        return importlib.import_module(source)
    except ImportError as error:
        raise ImportError(
            f"weights from {source} need the {source} package ({type(error).__name__}: {error}); "
            "install convzoo's 'ecosystem' extra: pip install 'convzoo[ecosystem]'"
        ) from error


def source_model(spec: str, *, pretrained: bool = False, num_classes: int = 1000) -> nn.Module:
    """Build ``"timm:arch"`` or ``"torchvision:arch"`` with its own package, with its released weights when
    ``pretrained``. A failure to get the weights (not in the package's cache and no network) raises
    ``RuntimeError`` saying so."""
    source, _, arch = spec.partition(":")
    if source not in SOURCES or not arch:
        raise ValueError(f"source model: spec must be 'timm:ARCH' or 'torchvision:ARCH', got {spec!r}")
    package = _import(source)
    try:
        if source == "timm":
            return package.create_model(arch, pretrained=pretrained, num_classes=num_classes)
        if pretrained and num_classes != 1000:
            raise ValueError(
                f"{spec}: torchvision's weights have 1000 classes, got num_classes={num_classes} "
                "(load them with 1000, then reset_classifier)"
            )
        return package.models.get_model(arch, weights="DEFAULT" if pretrained else None, num_classes=num_classes)
    except ValueError:
        raise
    except Exception as error:  # the package's own loading failed: say which weights and why
        what = "its pretrained weights" if pretrained else "the model"
        raise RuntimeError(
            f"{spec}: {source} could not build {what} ({type(error).__name__}: {error}); {source} keeps "
            "downloaded weights in its cache, and a first use needs network access"
        ) from error


def load_weights(model: nn.Module, source: nn.Module | Mapping[str, Tensor], arch: str | None = None) -> InteropReport:
    """Load ``source`` (a timm or torchvision model, or its ``state_dict()``) into convzoo ``model``, in place.

    ``model`` is a convzoo classifier built by ``create_model`` (its ``name`` picks the pairs); ``arch`` is
    ``"timm:ARCH"`` or ``"torchvision:ARCH"`` (or the source alone: its first pair), read from a timm model's
    ``pretrained_cfg`` when omitted.
    Returns the report of every tensor mapped and every adjustment made so the model computes what the source
    computes. Mismatched tensors raise ``ValueError``.
    """
    name = getattr(model, "name", None)
    if not isinstance(model, nn.Module) or not isinstance(name, str):
        raise TypeError(f"load_weights: model must be a convzoo model from create_model, got {type(model).__name__}")
    if arch is None and isinstance(source, nn.Module):
        cfg = getattr(source, "pretrained_cfg", None) or {}
        arch = f"timm:{cfg['architecture']}" if "architecture" in cfg else None
    if arch is None:
        specs = ", ".join(repr(p.spec) for p in pairs_for(name)) or "none"
        raise ValueError(f"load_weights: say which architecture the source is with arch= (for {name}: {specs})")
    pair = find_pair(name, arch)
    if isinstance(source, nn.Module) and pair.settings is not None:
        pair = dataclasses.replace(pair, edits=pair.edits + pair.settings(source))
    state = source.state_dict() if isinstance(source, nn.Module) else source
    if not isinstance(state, Mapping):
        raise TypeError(f"load_weights: source must be an nn.Module or a state dict, got {type(source).__name__}")
    return map_state(model, state, pair, name=name)


def load_pretrained(model: nn.Module, spec: str, *, num_classes: int = 1000) -> InteropReport:
    """Load the released weights named by ``spec`` (``"timm"``, ``"torchvision"`` or ``"source:arch"``) into
    convzoo ``model`` (built with ``num_classes``) through the source package's own loading."""
    pair = find_pair(model.name, spec)
    source = source_model(pair.spec, pretrained=True, num_classes=num_classes)
    return load_weights(model, source, pair.spec)


def _register() -> None:
    for model, specs in weight_sources().items():

        def loader(target: nn.Module, spec: str, *, num_classes: int = 1000) -> InteropReport:
            return load_pretrained(target, spec, num_classes=num_classes)

        WEIGHTS.register(model, kind="weights", summary=", ".join(specs))(loader)


_register()
