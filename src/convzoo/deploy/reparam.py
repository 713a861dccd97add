"""Structural re-parameterisation: every training-form op or block becomes its deploy form, one conv.

Two kinds of modules have a deploy form: models or blocks that define their own ``reparameterize()`` (UniRepLKNet
folds its GRN, BNs and layer scale as well), and linear shift-invariant convzoo ops (``linear=True`` in the
registry: ``dilated_reparam``, ``asym``, ``cp``, ``inception_dw``, multi-branch ops), which become
``op.dense_kernel().to_module()``. The result equals the eval-mode model up to float rounding.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field

import torch
from torch import nn

from convzoo.deploy.fuse_bn import set_submodule
from convzoo.ops.base import Op
from convzoo.registry import OPS, TRANSFORMS

__all__ = ["ReparamReport", "reparameterize", "reparameterize_with_report"]


@dataclass
class ReparamReport:
    """What :func:`reparameterize` did: blocks that reparameterised themselves, ops merged, ops kept (and why)."""

    blocks: list[str] = field(default_factory=list)
    merged: dict[str, str] = field(default_factory=dict)  # module name -> op name
    kept: dict[str, str] = field(default_factory=dict)  # module name -> reason


def _is_linear_op(module: nn.Module) -> bool:
    return isinstance(module, Op) and OPS.get(type(module).registry_name).linear


def _inside(name: str, outer: str) -> bool:
    return outer == "" or name == outer or name.startswith(f"{outer}.")


@torch.no_grad()
def reparameterize_with_report(model: nn.Module, *, inplace: bool = False) -> tuple[nn.Module, ReparamReport]:
    """:func:`reparameterize`, also returning a :class:`ReparamReport`."""
    model = model if inplace else copy.deepcopy(model)
    model.eval()
    report = ReparamReport()
    # outermost modules with their own reparameterize() first: they know their whole block (BN, GRN, scale)
    covered: list[str] = []
    for name, module in model.named_modules():
        if any(_inside(name, c) for c in covered) or _is_linear_op(module):
            continue
        method = getattr(module, "reparameterize", None)
        if callable(method):
            method()
            covered.append(name)
            report.blocks.append(name or "(model)")
    replaced: list[str] = []
    for name, module in list(model.named_modules()):
        if not _is_linear_op(module) or any(_inside(name, r) for r in replaced):
            continue
        try:
            merged = module.dense_kernel().to_module()
        except (NotImplementedError, ValueError) as error:
            report.kept[name] = str(error)
            continue
        set_submodule(model, name, merged)
        replaced.append(name)
        report.merged[name] = type(module).registry_name
    return model.eval(), report


@TRANSFORMS.register(
    "reparameterize",
    kind="transform",
    papers=("unireplknet",),
    summary="every op or block with a training and a deploy form becomes its deploy form (one conv via dense_kernel)",
)
def reparameterize(model: nn.Module, *, inplace: bool = False) -> nn.Module:
    """The deploy form of ``model`` (eval mode): blocks call their ``reparameterize()``, linear ops become the
    ``nn.Conv{dim}d`` of their ``dense_kernel()``. Ops whose configuration has no dense kernel are kept."""
    return reparameterize_with_report(model, inplace=inplace)[0]
