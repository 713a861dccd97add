"""Squeeze-and-excitation (S14, Hu et al., "Squeeze-and-Excitation Networks") and its one-FC "effective" form."""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from convzoo.core.init import conv_weight
from convzoo.core.validate import check_dim, check_int
from convzoo.registry import LAYERS

__all__ = ["squeeze_excite", "SqueezeExcite", "EffectiveSqueezeExcite"]

_CONV = {1: nn.Conv1d, 2: nn.Conv2d, 3: nn.Conv3d}


def _scale_channels(x: Tensor, gate: Tensor) -> Tensor:
    """``x`` (N, C, *S) times a per-sample, per-channel ``gate`` (N, C)."""
    return x * gate.view(*gate.shape, *(1,) * (x.dim() - 2))  # gate as (N, C, 1, ..., 1)


def squeeze_excite(
    x: Tensor,
    fc1_weight: Tensor,
    fc1_bias: Tensor | None,
    fc2_weight: Tensor,
    fc2_bias: Tensor | None,
    *,
    act: Callable[[Tensor], Tensor] = F.relu,
    gate: Callable[[Tensor], Tensor] = torch.sigmoid,
) -> Tensor:
    """Squeeze-and-Excitation of ``x`` (N, C, *S): ``x · gate(W2 act(W1 z + b1) + b2)`` with ``z`` the spatial mean.

    ``fc1_weight`` is ``(H, C)``, ``fc2_weight`` ``(C, H)`` for a hidden width H; the paper's ``act`` is ReLU
    and its ``gate`` the sigmoid (Eq. 2–4). Returns ``(N, C, *S)``.
    """
    squeezed = x.mean(dim=tuple(range(2, x.dim())))  # (N, C)
    hidden = act(F.linear(squeezed, fc1_weight, fc1_bias))  # (N, H)
    return _scale_channels(x, gate(F.linear(hidden, fc2_weight, fc2_bias)))  # gate (N, C)


@LAYERS.register("squeeze_excite", kind="layer", dims=(1, 2, 3), papers=("senet",))
class SqueezeExcite(nn.Module):
    """Squeeze-and-Excitation (S14): spatial mean → FC → act → FC → gate → per-channel scale, ``(N, C, *S)``.

    The hidden width is ``hidden`` when given (EfficientNet sizes it from the block input, TResNet states it),
    else ``max(1, C // reduction)`` (the paper's ``C/r`` as the released SENets compute it, floored at 1).
    ``act`` and ``gate`` build the two non-linearities (ReLU and sigmoid in S14; EfficientNet uses SiLU);
    ``bias`` is the two FCs' biases. Weights ``fc1_weight`` ``(H, C)`` and ``fc2_weight`` ``(C, H)`` start as
    ``nn.Linear``'s. Parameters: ``2·C·H + H + C`` with bias.
    """

    def __init__(
        self,
        channels: int,
        *,
        reduction: int = 16,
        hidden: int | None = None,
        act: Callable[[], nn.Module] = nn.ReLU,
        gate: Callable[[], nn.Module] = nn.Sigmoid,
        bias: bool = True,
    ) -> None:
        super().__init__()
        self.channels = check_int(channels, "channels", "squeeze_excite")
        self.reduction = check_int(reduction, "reduction", "squeeze_excite")
        self.hidden_channels = (
            max(1, channels // reduction) if hidden is None else check_int(hidden, "hidden", "squeeze_excite")
        )
        # empty kernel tuple: weights (out, in) initialised like nn.Linear
        self.fc1_weight, self.fc1_bias = conv_weight(self.hidden_channels, channels, (), bias)
        self.fc2_weight, self.fc2_bias = conv_weight(channels, self.hidden_channels, (), bias)
        self.act = act()
        self.gate = gate()

    def forward(self, x: Tensor) -> Tensor:
        return squeeze_excite(
            x, self.fc1_weight, self.fc1_bias, self.fc2_weight, self.fc2_bias, act=self.act, gate=self.gate
        )

    def extra_repr(self) -> str:
        return f"{self.channels}, hidden_channels={self.hidden_channels}, bias={self.fc1_bias is not None}"


@LAYERS.register("effective_squeeze_excite", kind="layer", dims=(1, 2, 3), papers=("rdnet",))
class EffectiveSqueezeExcite(nn.Module):
    """Effective SE (CenterMask's eSE, in RDNet S61): ``x · hardsigmoid(W z + b)``, one C × C FC, no reduction.

    Unlike :class:`SqueezeExcite` there is no hidden layer (the reduction loses channel information, CenterMask
    argues) and the gate is the hard sigmoid. ``(N, C, *S) → (N, C, *S)``; W is a 1×1 ``nn.Conv{dim}d``.
    """

    def __init__(self, channels: int, *, dim: int = 2) -> None:
        super().__init__()
        check_int(channels, "channels", "effective_squeeze_excite")
        self.fc = _CONV[check_dim(dim, "effective_squeeze_excite")](channels, channels, 1)

    def forward(self, x: Tensor) -> Tensor:
        gate = self.fc(x.mean(dim=tuple(range(2, x.dim())), keepdim=True))  # (N, C, 1, ..., 1)
        return x * F.hardsigmoid(gate)
