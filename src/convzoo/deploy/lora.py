"""``merge_lora`` (S29 DSCLoRA): every ConvLoRA adapter folded into its convolution's kernel, one plain conv each."""

from __future__ import annotations

import copy

import torch
from torch import nn

from convzoo.deploy.fuse_bn import set_submodule
from convzoo.layers.lora import LoRAConv
from convzoo.registry import TRANSFORMS

__all__ = ["merge_lora"]


@TRANSFORMS.register(
    "merge_lora",
    kind="transform",
    papers=("dsclora",),
    summary="fold every ConvLoRA adapter into its conv: W + (α/r)·BA, so inference costs what the base model costs",
)
@torch.no_grad()
def merge_lora(model: nn.Module, *, inplace: bool = False) -> nn.Module:
    """``model`` with each :class:`~convzoo.layers.lora.LoRAConv` replaced by its conv holding the merged kernel.

    The merged model equals the adapted one to float rounding (the same conv, its kernel summed once). Its parameters
    are trainable again, as a plain model's are.
    """
    model = model if inplace else copy.deepcopy(model)
    adapters = [(name, m) for name, m in model.named_modules() if isinstance(m, LoRAConv)]
    if isinstance(model, LoRAConv):
        adapters = [("", model)]
    for name, adapter in adapters:
        conv = adapter.conv
        conv.weight.copy_(adapter.merged_weight())
        for parameter in conv.parameters():
            parameter.requires_grad_(True)
        if name == "":
            return conv
        set_submodule(model, name, conv)
    return model
