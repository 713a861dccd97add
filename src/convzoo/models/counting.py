"""Counting a model without building its weights: parameters and multiply-accumulates on the meta device."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from convzoo.models.registration import create_model
from convzoo.registry import MODELS

__all__ = ["count_params", "meta_param_count", "meta_macs"]


def count_params(model: nn.Module) -> int:
    """Number of parameters of ``model`` (every ``nn.Parameter``, trainable or frozen; buffers excluded)."""
    return sum(p.numel() for p in model.parameters())


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
