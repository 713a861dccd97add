"""Binarisation for deployment (S8, XNOR-Net): every trained ``binary`` op becomes its bit-packed inference form.

Each :class:`~convzoo.ops.binary.BinaryConv` is replaced by a
:class:`~convzoo.deploy.packed_binary.PackedBinaryConv` holding one bit per weight (int64 words along the input
channels) plus the float α per output channel and the bias; the float weights are dropped. Everything else in
the model (the float first and last layers, BN) is left as it is.
"""

from __future__ import annotations

import copy

import torch
from torch import nn

from convzoo.deploy.packed_binary import PackedBinaryConv
from convzoo.ops.binary import BinaryConv
from convzoo.registry import TRANSFORMS

__all__ = ["binarize"]


def _fold_input_bns(module: nn.Module) -> int:
    """In every ``nn.Sequential``, an eval BatchNorm directly followed by a packed XNOR conv is folded into the conv
    (its output feeds only that conv) and replaced by ``nn.Identity``; returns how many were folded."""
    count = 0
    for child in module.children():
        count += _fold_input_bns(child)
    if isinstance(module, nn.Sequential):
        names = list(module._modules)
        for before, after in zip(names, names[1:], strict=False):
            bn, conv = module._modules[before], module._modules[after]
            foldable = isinstance(bn, nn.modules.batchnorm._BatchNorm) and bn.running_mean is not None
            if foldable and isinstance(conv, PackedBinaryConv) and conv.mode == "xnor":
                conv.fold_input_bn(bn)
                module._modules[before] = nn.Identity()
                count += 1
    return count


def _replace(module: nn.Module) -> int:
    count = 0
    for name, child in module.named_children():
        if isinstance(child, BinaryConv):
            setattr(module, name, PackedBinaryConv.from_binary(child))
            count += 1
        else:
            count += _replace(child)
    return count


@TRANSFORMS.register(
    "binarize",
    kind="transform",
    papers=("xnor-net",),
    summary="pack every binary op's weights to one bit each for packed XNOR/BWN inference (S8)",
)
def binarize(
    model: nn.Module, *, inplace: bool = False, channels_last: bool = False, fold_bn: bool = False
) -> nn.Module:
    """``model`` (a copy unless ``inplace``) in eval mode with every ``binary`` op in its packed inference form.

    ``fold_bn=True`` also folds each BatchNorm that directly precedes an XNOR conv in an ``nn.Sequential`` (S8's
    BN → BinActiv → BinConv) into the conv's packing pass (:meth:`PackedBinaryConv.fold_input_bn`), removing the
    BN's pass over the activations. The folded affine ``x · s + t`` rounds differently from BatchNorm's own
    arithmetic in the last bit, so an input that BN maps to within a rounding error of 0 may binarise to the other
    sign: the same function up to such ties, not bit for bit.

    ``channels_last=True`` also stores the model's 4-d weights channels-last, so its float convs, BN and pooling
    run in that layout (PyTorch's CPU max pooling, for one, is many times faster there) and the packed convs
    read their input in place; the outputs are the same up to float rounding. Such a model's state dict holds
    non-contiguous tensors: call ``.contiguous()`` on them before ``safetensors.torch.save_file``.

    Raises ``ValueError`` when the model holds no ``binary`` op (nothing to binarise).
    """
    model = model if inplace else copy.deepcopy(model)
    if isinstance(model, BinaryConv):
        return PackedBinaryConv.from_binary(model).eval()
    if _replace(model) == 0:
        raise ValueError(f"binarize: {type(model).__name__} holds no 'binary' op to pack")
    if fold_bn:
        _fold_input_bns(model.eval())
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    return model.eval()
