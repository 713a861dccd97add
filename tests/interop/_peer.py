"""Helpers of the peer tests: the ecosystem packages when they import, and random float64 weights."""

from __future__ import annotations

import importlib

import pytest
import torch
from torch import nn


def require(name: str):
    """The package ``name`` (timm, torchvision), or skip saying why it is not usable here."""
    try:
        return importlib.import_module(name)
    except ImportError as error:  # absent, or present but broken (torchvision built for another torch)
        pytest.skip(f"{name} is not importable here ({type(error).__name__}: {error}); `make test-peer` runs these")


def randomize(model: nn.Module, seed: int = 0) -> nn.Module:
    """Random float64 weights (variance-preserving: std 1/√fan-in, so deep models neither vanish nor blow up and
    the output depends on the input), norm affines, biases, layer scales and BN statistics, so zero- or
    one-initialised tensors cannot hide a wrong mapping; eval mode."""
    model.double().eval()
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, tensor in model.state_dict().items():
            if not tensor.is_floating_point():
                continue
            leaf = name.rsplit(".", 1)[-1]
            shape = tensor.shape
            if tensor.dim() >= 2 and tensor.numel() > shape[0]:
                fan_in = tensor.numel() // shape[0]
                tensor.copy_(torch.randn(shape, generator=generator, dtype=tensor.dtype) / fan_in**0.5)
            elif leaf == "running_var":
                tensor.copy_(torch.rand(shape, generator=generator, dtype=tensor.dtype) + 0.5)
            elif leaf == "running_mean" or (tensor.dim() == 1 and "bias" in leaf):
                tensor.copy_(0.1 * torch.randn(shape, generator=generator, dtype=tensor.dtype))
            elif tensor.numel() == shape[0] or leaf in ("gamma", "scale", "layer_scale"):
                # norm weights, layer scales (timm starts some at 1e-6 or 0): around 1
                tensor.copy_(torch.rand(shape, generator=generator, dtype=tensor.dtype) + 0.5)
    return model
