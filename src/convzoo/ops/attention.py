"""Channel attention that reweights the C channels of its input (S14 SE, S90 ECA): N-d, C → C, stride 1."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

from convzoo.core.init import conv_weight
from convzoo.core.validate import check_int
from convzoo.layers.squeeze_excite import squeeze_excite
from convzoo.ops.base import Op
from convzoo.registry import OPS

__all__ = [
    "SqueezeExcite",
    "EfficientChannelAttention",
    "squeeze_excite",  # re-exported from convzoo.layers.squeeze_excite, its home
    "efficient_channel_attention",
    "eca_kernel_size",
]


def efficient_channel_attention(x: Tensor, weight: Tensor) -> Tensor:
    """ECA of ``x`` (N, C, *S): ``x · σ(w ⋆ z)`` with ``z`` the spatial mean and ``⋆`` a 1-D conv across channels.

    ``weight`` is ``(1, 1, k)`` for odd ``k``; the channel axis is zero-padded by ``k // 2`` on both
    sides, so ``gate[c] = σ(Σ_j w[j] · z[c + j − k // 2])`` (cross-correlation, as ``nn.Conv1d``).
    Returns ``(N, C, *S)``.
    """
    pooled = x.mean(dim=tuple(range(2, x.dim())))  # (N, C)
    k = weight.shape[-1]
    logits = F.conv1d(pooled.unsqueeze(1), weight, padding=k // 2)  # (N, 1, C): channels as a 1-D sequence
    gate = torch.sigmoid(logits.squeeze(1))  # (N, C)
    return x * gate.view(*gate.shape, *(1,) * (x.dim() - 2))  # gate as (N, C, 1, ..., 1)


def eca_kernel_size(channels: int, gamma: float = 2, b: float = 1) -> int:
    """ECA's adaptive kernel size ``k = ψ(C) = |log2(C)/γ + b/γ|_odd`` (paper Eq. 12, γ = 2, b = 1).

    ``|t|_odd`` is computed the way the widely used reference code does:
    ``t = int(|(log2 C + b) / γ|)``, then ``k = t`` if ``t`` is odd, else ``t + 1``.

    >>> [eca_kernel_size(c) for c in (64, 128, 256, 512, 1024, 2048)]
    [3, 5, 5, 5, 5, 7]
    """
    check_int(channels, "channels", "eca")
    if isinstance(gamma, bool) or not isinstance(gamma, int | float) or not gamma > 0:
        raise ValueError(f"eca: gamma must be a positive number, got {gamma!r}")
    if isinstance(b, bool) or not isinstance(b, int | float) or not math.isfinite(b):
        raise ValueError(f"eca: b must be a finite number, got {b!r}")
    t = int(abs((math.log2(channels) + b) / gamma))
    return t if t % 2 else t + 1


@OPS.register("se", kind="attention", dims=(1, 2, 3), papers=("senet",), dynamic=True)
class SqueezeExcite(Op):
    """Squeeze-and-Excitation (S14, Squeeze-and-Excitation Networks): pool → FC → ReLU → FC → sigmoid → scale.

    The operator form of :class:`convzoo.layers.squeeze_excite.SqueezeExcite` (the layer models build their SE
    blocks from): the same parameters and the same :func:`~convzoo.layers.squeeze_excite.squeeze_excite`, under
    the operator contract (``create_op``, ``op=``, the input checks) with the paper's ReLU and sigmoid.

    ``(N, C, *S) → (N, C, *S)``: ``out = x · σ(W2 δ(W1 mean_S(x) + b1) + b2)``, one gate per sample
    and channel, the mean taken over every spatial dim (N-d). ``reduction`` is the paper's ``r = 16``;
    the hidden width is ``max(1, C // r)``: the paper's ``C/r`` as the PyTorch port of the released
    SENets computes it (``C // r``, unguarded), plus a floor of 1 so tiny C still works (timm instead
    rounds ``C/r`` to a multiple of 8). ``bias`` is the two FCs' biases (the paper's FCs have them).
    There is no spatial kernel: ``kernel_size`` is accepted (any positive size) so SE can stand where
    a conv stood, and is unused; stride must be 1.
    Parameters: ``2·C·(C // r) + C + C // r`` with bias.
    """

    same_channels = True
    odd_kernel = False
    max_stride = 1

    def __init__(self, in_channels, out_channels, kernel_size=3, stride=1, *, dim=2, bias=True, reduction=16):
        super().__init__(in_channels, out_channels, kernel_size, stride, dim=dim, bias=bias)
        self.reduction = check_int(reduction, "reduction", type(self).registry_name)
        self.hidden_channels = max(1, in_channels // reduction)
        # empty kernel tuple: weights (out, in) initialised like nn.Linear
        self.fc1_weight, self.fc1_bias = conv_weight(self.hidden_channels, in_channels, (), bias)
        self.fc2_weight, self.fc2_bias = conv_weight(in_channels, self.hidden_channels, (), bias)

    def forward(self, x: Tensor) -> Tensor:
        self.check_input(x)
        return squeeze_excite(x, self.fc1_weight, self.fc1_bias, self.fc2_weight, self.fc2_bias)

    def extra_repr(self) -> str:
        return (
            f"{self.in_channels}, reduction={self.reduction}, hidden_channels={self.hidden_channels}, "
            f"dim={self.dim}, bias={self.has_bias} (kernel_size unused)"
        )


@OPS.register("eca", kind="attention", dims=(1, 2, 3), papers=("eca-net",), dynamic=True)
class EfficientChannelAttention(Op):
    """ECA (S90, ECA-Net: Efficient Channel Attention): pool → 1-D conv of size k(C) across channels → sigmoid → scale.

    ``(N, C, *S) → (N, C, *S)``: ``out[:, c] = x[:, c] · σ(Σ_j w[j] · z[c + j − k // 2])`` with ``z``
    the mean over every spatial dim (N-d) and zeros beyond the first and last channel; ``k`` weights,
    no bias, no dimensionality reduction. ``k`` is :func:`eca_kernel_size` ``(C, gamma, b)`` (paper
    Eq. 12, γ = 2, b = 1) unless ``k_size`` (odd) overrides it; timm additionally clamps k ≥ 3, the
    paper's formula does not (it gives k = 1 for C < 8). The released ECA-ResNet-50 fixed
    k = 3, 5, 5, 7 per stage (checkpoint ``eca_resnet50_k3557``: 80 parameters in all, the abstract's
    figure) where the formula gives 5, 5, 5, 7. The contract's ``kernel_size`` is not the channel
    kernel: it is accepted (any positive size) and unused, as is ``bias`` (the paper's conv has none).
    """

    same_channels = True
    odd_kernel = False
    max_stride = 1

    def __init__(
        self, in_channels, out_channels, kernel_size=3, stride=1, *, dim=2, bias=True, k_size=None, gamma=2, b=1
    ):
        super().__init__(in_channels, out_channels, kernel_size, stride, dim=dim, bias=bias)
        name = type(self).registry_name
        adaptive = eca_kernel_size(in_channels, gamma, b)
        if k_size is None:
            k_size = adaptive
        elif check_int(k_size, "k_size", name) % 2 == 0:
            raise ValueError(f"{name}: k_size must be odd (symmetric zero padding across channels), got {k_size!r}")
        self.k_size = k_size
        self.gamma = gamma
        self.b = b
        self.weight, _ = conv_weight(1, 1, (k_size,), bias=False)  # (1, 1, k), initialised like nn.Conv1d

    def forward(self, x: Tensor) -> Tensor:
        self.check_input(x)
        return efficient_channel_attention(x, self.weight)

    def extra_repr(self) -> str:
        return f"{self.in_channels}, k_size={self.k_size}, dim={self.dim} (kernel_size and bias unused)"
