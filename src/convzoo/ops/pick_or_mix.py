"""Pick-or-Mix (S93, Kumar et al., CVPR 2024): dynamic per-pixel channel sampling in place of a 1×1 squeeze."""

from __future__ import annotations

import functools

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from convzoo.core.validate import is_number
from convzoo.ops.base import Op
from convzoo.registry import OPS

__all__ = ["PickOrMix", "pick_or_mix"]


def pick_or_mix(
    x: Tensor,
    gate_weight: Tensor,
    gate_bias: Tensor | None = None,
    stride: tuple[int, ...] | None = None,
    threshold: float = 0.5,
) -> Tensor:
    """PiX: ``(N, C_in, *S) → (N, C_out, *ceil(S / stride))`` with ``ζ = C_in / C_out`` channels per subset.

    ``z = mean_S |x|`` (N, C_in); ``p = sigmoid(z · gate_weightᵀ + gate_bias)`` (N, C_out), with
    ``gate_weight (C_out, C_in)``. Output channel ``o`` fuses the subset ``x[:, o·ζ : (o+1)·ζ]``
    pixel by pixel: ``p · max`` over the subset (pick) where ``p < threshold``, else ``p · mean`` (mix).
    ``stride`` keeps every ``stride``-th pixel of the fused map (the context still sees all of ``x``).
    """
    n, c_in = x.shape[:2]
    c_out = gate_weight.shape[0]
    spatial_ones = (1,) * (x.dim() - 2)
    context = x.abs().flatten(2).mean(dim=2)  # (N, C_in)
    probability = torch.sigmoid(F.linear(context, gate_weight, gate_bias))  # (N, C_out)
    if stride is not None:
        x = x[(..., *(slice(None, None, s) for s in stride))]  # (N, C_in, *S')
    factor = c_in // c_out
    members = [x[:, i::factor] for i in range(factor)]  # ζ × (N, C_out, *S'): member i of every subset, views
    # element-wise max and mean over the members write in x's memory format (a reduction over a subset axis
    # would write a contiguous tensor whatever the input's layout)
    largest = functools.reduce(torch.maximum, members)  # (N, C_out, *S')
    mean = sum(members[1:], members[0]) / factor  # (N, C_out, *S')
    pick = (probability < threshold).view(n, c_out, *spatial_ones)  # (N, C_out, 1, ..., 1)
    return probability.view(n, c_out, *spatial_ones) * torch.where(pick, largest, mean)


@OPS.register("pix", kind="grid", dims=(1, 2, 3), papers=("pick-or-mix",), dynamic=True)
class PickOrMix(Op):
    """Pick-or-Mix (S93, Kumar et al., "Pick-or-Mix: Dynamic Channel Sampling for ConvNets", CVPR 2024).

    Replaces a 1×1 channel-squeezing conv ``C_in → C_out`` (``C_in`` divisible by ``C_out``; sampling
    factor ``ζ = C_in / C_out``), N-d. Input channels are cut into ``C_out`` contiguous subsets of ``ζ``;
    a gate computed from the input decides, per sample and output channel, whether that subset is
    *picked* (channel max, so the chosen channel changes from pixel to pixel) or *mixed* (channel mean):

    - global context ``z_i = mean_S |x_i|`` (N, C_in);
    - sampling probability ``p = sigmoid(θ z + β)`` (N, C_out), ``θ`` = ``gate_weight`` (C_out, C_in),
      ``β`` = ``gate_bias`` (the contract's ``bias``);
    - ``out_o = p_o · max_{i ∈ subset o} x_i`` if ``p_o < τ`` else ``p_o · mean_{i ∈ subset o} x_i``.

    ``threshold`` τ defaults to 0.5 and θ is Xavier-uniform initialised, both as in the official code
    (github.com/ashishkumar822/PiX); β starts at 0. The hard pick/mix switch passes no gradient; θ and β
    learn through the ``p`` that scales the output, as in the official CUDA kernel.

    ``kernel_size`` must be 1: PiX mixes channels only, and accepting a larger kernel would silently
    drop the spatial filtering a caller asked for. ``stride`` subsamples the output like the strided 1×1
    conv it replaces (the context is still pooled over the whole input).

    Departures: the paper's context is the per-channel l1 norm ``Σ_S |x|`` while the official code
    average-pools ``x``; ``mean_S |x|`` equals the official context on the non-negative (post-ReLU)
    inputs PiX sees in ResNet and is the paper's l1 norm divided by the pixel count, so the gate does
    not depend on the resolution. The official gate has no β (``bias=False`` reproduces it). The
    official kernel lets a last subset be shorter when ``ζ`` does not divide ``C_in``; here it must.
    """

    contract_channels = (16, 8)
    contract_kernel_size = 1

    def __init__(self, in_channels, out_channels, kernel_size=1, stride=1, *, dim=2, bias=True, threshold=0.5):
        super().__init__(in_channels, out_channels, kernel_size, stride, dim=dim, bias=bias)
        name = type(self).registry_name
        if any(k != 1 for k in self.kernel_size):
            raise ValueError(
                f"{name}: kernel_size must be 1 (Pick-or-Mix replaces a 1×1 squeeze and mixes no pixels), "
                f"got {kernel_size!r}"
            )
        if in_channels % out_channels:
            raise ValueError(
                f"{name}: in_channels ({in_channels}) must be a multiple of out_channels ({out_channels}): "
                f"each output channel samples a subset of in_channels / out_channels inputs"
            )
        if not is_number(threshold) or not 0 <= threshold <= 1:
            raise ValueError(f"{name}: threshold must be a probability in [0, 1], got {threshold!r}")
        self.threshold = float(threshold)
        self.sampling_factor = in_channels // out_channels
        self.gate_weight = nn.Parameter(torch.empty(out_channels, in_channels))
        nn.init.xavier_uniform_(self.gate_weight)
        self.gate_bias = nn.Parameter(torch.zeros(out_channels)) if bias else None

    def forward(self, x: Tensor) -> Tensor:
        self.check_input(x)
        stride = None if all(s == 1 for s in self.stride) else self.stride
        return pick_or_mix(x, self.gate_weight, self.gate_bias, stride, self.threshold)

    def extra_repr(self) -> str:
        return (
            super().extra_repr()
            + f", sampling_factor={self.sampling_factor}, threshold={self.threshold}, bias={self.gate_bias is not None}"
        )
