"""Tune mode for ConvBN blocks (S49, "Efficient ConvBN Blocks for Transfer Learning and Beyond").

When a network is fine-tuned with its BatchNorms in eval mode (running statistics frozen, γ and β still learned),
``bn(conv(x))`` is one affine map, so the paper computes it as a single conv whose weight is folded on the fly::

    w' = w · γ/√(var + eps)        b' = β + (b − mean) · γ/√(var + eps)        y = conv(x; w', b')

Forward and gradients (for x, w, b, γ, β) equal the eval-mode pair, but autograd no longer stores the conv's
output for the BN's backward: only the conv input and the (small) folded weight are saved.
"""

from __future__ import annotations

import copy

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from convzoo.deploy.fuse_bn import _CONVS, bn_scale_shift, example_for, find_conv_bn_pairs, set_submodule
from convzoo.registry import TRANSFORMS

__all__ = ["TuneConvBN", "saved_tensor_bytes", "tune_mode"]


class TuneConvBN(nn.Module):
    """S49 Tune mode: an ``nn.ConvNd`` or ``nn.Linear`` and the eval-mode BatchNorm after it, as one folded layer.

    Input and output as the pair's. The BN stays in eval mode whatever ``train()`` says (its running statistics
    are frozen, as in the transfer-learning setting the paper addresses); its γ and β are still trained.
    ``state_dict`` keys are the pair's under ``conv.`` and ``bn.``.
    """

    def __init__(self, conv: nn.Module, bn: nn.Module) -> None:
        super().__init__()
        if not isinstance(conv, (*_CONVS, nn.Linear)):
            raise TypeError(f"TuneConvBN: expected an nn.Conv1d/2d/3d or nn.Linear, got {type(conv).__name__}")
        if bn.running_mean is None:
            raise ValueError("TuneConvBN: the BatchNorm must track running statistics (track_running_stats=True)")
        self.conv = conv
        self.bn = bn.eval()

    def train(self, mode: bool = True) -> TuneConvBN:
        super().train(mode)
        self.bn.eval()
        return self

    def folded(self) -> tuple[Tensor, Tensor]:
        """The folded weight and bias (differentiable in the conv's and BN's parameters)."""
        scale, shift = bn_scale_shift(self.bn)  # (C,), (C,)
        weight = self.conv.weight * scale.view(-1, *([1] * (self.conv.weight.dim() - 1)))
        bias = shift if self.conv.bias is None else self.conv.bias * scale + shift
        return weight, bias

    def forward(self, x: Tensor) -> Tensor:
        weight, bias = self.folded()
        if isinstance(self.conv, nn.Linear):
            return F.linear(x, weight, bias)
        return self.conv._conv_forward(x, weight, bias)


@TRANSFORMS.register(
    "tune_mode",
    kind="transform",
    papers=("convbn-tune",),
    summary="S49 Tune mode: conv + eval-mode BN computed as one conv with the folded weight, for fine-tuning",
)
def tune_mode(model: nn.Module, example: Tensor | None = None, *, inplace: bool = False) -> nn.Module:
    """Replace every conv/linear + BatchNorm pair (found as in :func:`fuse_bn`) by a :class:`TuneConvBN`.

    The model computes the same function as with its BNs in eval mode, and trains with the same gradients.
    """
    model = model if inplace else copy.deepcopy(model)
    if example is None:
        example = example_for(model)
    for pair in find_conv_bn_pairs(model, example):
        producer, bn = model.get_submodule(pair.producer), model.get_submodule(pair.bn)
        if isinstance(producer, (*_CONVS, nn.Linear)):
            set_submodule(model, pair.producer, TuneConvBN(producer, bn))
            set_submodule(model, pair.bn, nn.Identity())
    return model


def saved_tensor_bytes(model: nn.Module, x: Tensor) -> int:
    """Bytes autograd keeps for the backward of ``model(x)`` (distinct storages, parameters excluded).

    This is the activation memory of one training step, which is what Tune mode lowers; it does not depend on
    the allocator and is the same on every run.
    """
    parameters = {p.untyped_storage().data_ptr() for p in model.parameters()}
    storages: dict[int, int] = {}

    def pack(tensor: Tensor) -> Tensor:
        storage = tensor.untyped_storage()
        if storage.data_ptr() not in parameters:
            storages[storage.data_ptr()] = storage.nbytes()
        return tensor

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
        out = model(x)
    del out
    return sum(storages.values())
