"""ConvLoRA (S29 DSCLoRA): a low-rank, zero-initialised update of any convolution's kernel, trainable alone.

``LoRAConv(conv, rank, alpha)`` computes ``conv`` with the kernel ``W + (α / r) · reshape(B A)``: ``A`` is
``(r, C_in/g · ∏k)``, ``B`` is ``(C_out, r)``. ``B`` starts at zero, so the wrapped model starts equal to the original;
the original kernel and bias are frozen. The update is a kernel of the conv's own shape, so it works for 1-d, 2-d and
3-d, grouped, strided and dilated convs alike, and folds into the kernel exactly (``convzoo.deploy.merge_lora``).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import Tensor, nn

from convzoo.core.validate import check_int, check_number
from convzoo.registry import LAYERS

__all__ = ["LoRAConv", "apply_lora", "lora_parameters"]

_CONVS = (nn.Conv1d, nn.Conv2d, nn.Conv3d)


@LAYERS.register("lora", kind="layer", dims=(1, 2, 3), papers=("dsclora",))
class LoRAConv(nn.Module):
    """``conv`` (frozen) plus a rank-``rank`` update of its kernel scaled by ``alpha / rank``; shapes as ``conv``."""

    def __init__(self, conv: nn.Module, rank: int = 4, alpha: float = 1.0) -> None:
        super().__init__()
        if not isinstance(conv, _CONVS):
            raise ValueError(f"lora: wraps nn.Conv1d/2d/3d, got {type(conv).__name__}")
        self.rank = check_int(rank, "rank", "lora")
        self.alpha = check_number(alpha, "alpha", "lora", low=None)
        self.conv = conv
        for parameter in conv.parameters():
            parameter.requires_grad_(False)
        fan_in = conv.weight[0].numel()  # C_in / groups · ∏k
        self.lora_A = nn.Parameter(torch.empty(rank, fan_in, dtype=conv.weight.dtype, device=conv.weight.device))
        self.lora_B = nn.Parameter(conv.weight.new_zeros(conv.out_channels, rank))
        nn.init.kaiming_uniform_(self.lora_A, a=math.sqrt(5))

    @property
    def scaling(self) -> float:
        return self.alpha / self.rank

    def delta(self) -> Tensor:
        """The kernel update ``(α / r) · B A`` in the kernel's shape ``(C_out, C_in / groups, *k)``."""
        return (self.lora_B @ self.lora_A).view_as(self.conv.weight) * self.scaling

    def merged_weight(self) -> Tensor:
        return self.conv.weight + self.delta()

    def forward(self, x: Tensor) -> Tensor:
        return self.conv._conv_forward(x, self.merged_weight(), self.conv.bias)

    def extra_repr(self) -> str:
        return f"rank={self.rank}, alpha={self.alpha}"


def apply_lora(
    model: nn.Module,
    rank: int | Callable[[str, nn.Module], int],
    alpha: float | None = None,
    *,
    where: Callable[[str, nn.Module], bool] | None = None,
) -> nn.Module:
    """Wrap, in place, every conv of ``model`` that ``where(name, conv)`` accepts (all by default) in :class:`LoRAConv`.

    ``rank`` may be a function of the conv's name and module (0 leaves it unwrapped); ``alpha`` defaults to ``2·rank``
    (DSCLoRA's setting). Returns ``model``.
    """
    targets = [
        (name, m) for name, m in model.named_modules() if isinstance(m, _CONVS) and (where is None or where(name, m))
    ]
    # a conv already inside an adapter is not wrapped twice
    targets = [(n, m) for n, m in targets if not isinstance(model.get_submodule(n.rpartition(".")[0]), LoRAConv)]
    for name, conv in targets:
        r = rank(name, conv) if callable(rank) else rank
        if r <= 0:
            continue
        parent_name, _, child = name.rpartition(".")
        parent = model.get_submodule(parent_name) if parent_name else model
        setattr(parent, child, LoRAConv(conv, r, 2.0 * r if alpha is None else alpha))
    return model


def lora_parameters(model: nn.Module) -> list[nn.Parameter]:
    """The trainable parameters of every :class:`LoRAConv` in ``model`` (what an adapter fine-tune optimises)."""
    return [p for m in model.modules() if isinstance(m, LoRAConv) for p in (m.lora_A, m.lora_B)]
