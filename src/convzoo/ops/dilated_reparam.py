"""UniRepLKNet's Dilated Reparam Block: a large depthwise kernel plus parallel dilated small kernels (N-d)."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from convzoo.core.conv import same_padding
from convzoo.core.init import conv_weight
from convzoo.kernels.large_kernel import depthwise_conv, large_kernel_module
from convzoo.ops.base import ConvSpec, Op
from convzoo.registry import OPS

__all__ = ["DILATED_BRANCHES", "DilatedReparam", "dilated_to_dense", "fuse_bn"]

_BATCH_NORM = {1: nn.BatchNorm1d, 2: nn.BatchNorm2d, 3: nn.BatchNorm3d}

# Large kernel K -> parallel (small kernel k, dilation r) branches. Source: the paper's default settings as coded in
# AILab-CVC/UniRepLKNet, unireplknet.py, DilatedReparamBlock.__init__ (K = 5..17; there is no row for K = 3).
DILATED_BRANCHES: dict[int, tuple[tuple[int, int], ...]] = {
    5: ((3, 1), (3, 2)),
    7: ((5, 1), (3, 2), (3, 3)),
    9: ((5, 1), (5, 2), (3, 3), (3, 4)),
    11: ((5, 1), (5, 2), (3, 3), (3, 4), (3, 5)),
    13: ((5, 1), (7, 2), (3, 3), (3, 4), (3, 5)),
    15: ((5, 1), (7, 2), (3, 3), (3, 5), (3, 7)),
    17: ((5, 1), (9, 2), (3, 4), (3, 5), (3, 7)),
}


def fuse_bn(weight: Tensor, bn: nn.Module) -> tuple[Tensor, Tensor]:
    """Fold an eval-mode BatchNorm into the bias-free conv before it: ``(weight', bias')`` with

    ``weight' = weight · γ / √(var + eps)`` and ``bias' = β − mean · γ / √(var + eps)`` (γ = 1 or β = 0 where absent).
    ``weight`` is ``(C, 1, *k)``; the result is ``(C, 1, *k)`` and ``(C,)``.
    """
    scale = torch.rsqrt(bn.running_var + bn.eps)  # (C,)
    if bn.weight is not None:
        scale = scale * bn.weight
    shift = -bn.running_mean * scale
    if bn.bias is not None:
        shift = shift + bn.bias
    return weight * scale.view(-1, *([1] * (weight.dim() - 1))), shift  # (C, 1, *k), (C,)


def dilated_to_dense(weight: Tensor, dilation: int, size: int) -> Tensor:
    """The dense ``size``-wide kernel equal to ``weight`` applied with ``dilation``: taps every ``dilation``-th
    position (zeros between them), centred in a ``size``^d box. ``weight`` is ``(C, 1, *k)`` with odd, equal k.
    """
    channels, per_group, *kernel = weight.shape
    span = dilation * (kernel[0] - 1) + 1  # the dilated kernel's reach
    offset = (size - span) // 2
    dense = weight.new_zeros(channels, per_group, *([size] * len(kernel)))  # (C, 1, *K)
    taps = tuple(slice(offset, offset + span, dilation) for _ in kernel)
    dense[(slice(None), slice(None), *taps)] = weight
    return dense


@OPS.register("dilated_reparam", kind="grid", dims=(1, 2, 3), papers=("unireplknet",), linear=True)
class DilatedReparam(Op):
    """UniRepLKNet (S12, S15), Dilated Reparam Block: a large K^d depthwise kernel plus dilated small ones, merged.

    Input ``(N, C, *S)`` → output ``(N, C, *ceil(S / stride))``. Training form, per channel::

        y = BN_0(W_K ⋆ x) + Σ_i BN_i(W_{k_i} ⋆_{r_i} x)

    where ``⋆_r`` is a depthwise conv with dilation ``r`` and the (k_i, r_i) pairs come from the paper's table
    :data:`DILATED_BRANCHES` (K = 5, 7, 9, 11, 13, 15, 17; other K raise: the official code has no K = 3 row, so
    ``create_op``'s default ``kernel_size=3`` raises; the class default is 13, UniRepLKNet's kernel). Every branch has
    reach ``r_i (k_i − 1) + 1 ≤ K``, "same" padding and the op's stride, so all branches sample the same centres and the
    sum is one depthwise K^d conv. ``dense_kernel()`` returns that conv: each BN folded into its kernel with the
    running statistics, each dilated kernel written into a K^d box with zeros between taps, kernels and biases
    summed. It equals ``op(x)`` in eval mode only (training-mode BN uses batch statistics). ``merge()`` returns it
    as an ``nn.Conv{dim}d`` (the deploy form).

    N-d: the same table on every axis (kernel_size must be equal along all axes). Stride 2 strides every branch
    (the official block is stride 1 only). ``use_bn=False`` drops the BNs (a plain sum of depthwise convs, one
    shared bias iff ``bias``). With BN, ``bias=False`` means the BNs have no learned shift β (scale γ only); the
    merged conv still has a bias ``−Σ mean·γ/√(var + eps)`` from the running means, as in the paper's deploy form.
    """

    same_channels = True
    contract_kernel_size = 5  # the smallest kernel with a dilated-branch table (the registry-wide tests use it)

    def __init__(self, in_channels, out_channels, kernel_size=13, stride=1, *, dim=2, bias=True, use_bn=True):
        super().__init__(in_channels, out_channels, kernel_size, stride, dim=dim, bias=bias)
        name = type(self).registry_name
        supported = ", ".join(str(k) for k in DILATED_BRANCHES)
        if len(set(self.kernel_size)) != 1 or self.kernel_size[0] not in DILATED_BRANCHES:
            raise ValueError(
                f"{name}: kernel_size must be one of {supported} (the same on every axis), got {kernel_size!r}"
            )
        if not isinstance(use_bn, bool):
            raise TypeError(f"{name}: use_bn must be a bool, got {use_bn!r}")
        self.use_bn = use_bn
        self.branches = DILATED_BRANCHES[self.kernel_size[0]]
        channels = in_channels
        self.large_weight, _ = conv_weight(channels, 1, self.kernel_size, bias=False)
        self.dilated_weights = nn.ParameterList(
            conv_weight(channels, 1, (k,) * dim, bias=False)[0] for k, _ in self.branches
        )
        if use_bn:
            self.large_bn = self._batch_norm(channels)
            self.dilated_bns = nn.ModuleList(self._batch_norm(channels) for _ in self.branches)
            self.bias = None
        else:
            self.bias = nn.Parameter(torch.zeros(channels)) if bias else None

    def _batch_norm(self, channels: int) -> nn.Module:
        bn = _BATCH_NORM[self.dim](channels)
        if not self.has_bias:
            # scale γ only: β becomes a constant zero (a buffer, so reset_parameters and F.batch_norm still work)
            del bn.bias
            bn.register_buffer("bias", torch.zeros(channels), persistent=False)
        return bn

    def _conv(self, x: Tensor, weight: Tensor, dilation: int) -> Tensor:
        """Depthwise conv of ``x`` ``(N, C, *S)`` with ``weight`` ``(C, 1, *k)`` and ``dilation``, "same" padding."""
        padding = same_padding(weight.shape[2:], dilation)
        # the large-kernel path: fast past 13 wide, and it carries the one-channel 3-d gradient workaround
        return depthwise_conv(x, weight, None, self.stride, padding, dilation)

    def forward(self, x: Tensor) -> Tensor:
        self.check_input(x)
        out = self._conv(x, self.large_weight, 1)
        if self.use_bn:
            out = self.large_bn(out)
        for index, (_, dilation) in enumerate(self.branches):
            branch = self._conv(x, self.dilated_weights[index], dilation)
            out = out + (self.dilated_bns[index](branch) if self.use_bn else branch)
        if self.bias is not None:
            out = out + self.bias.view(-1, *([1] * self.dim))
        return out

    def dense_kernel(self) -> ConvSpec:
        """The merged depthwise K^d conv with bias; exact in eval mode (BNs folded with their running stats)."""
        size = self.kernel_size[0]
        with torch.no_grad():
            weight = self.large_weight.detach().clone()  # (C, 1, *K)
            bias = None if self.bias is None else self.bias.detach().clone()
            if self.use_bn:
                weight, bias = fuse_bn(weight, self.large_bn)
            for index, (_, dilation) in enumerate(self.branches):
                small = self.dilated_weights[index].detach()  # (C, 1, *k)
                if self.use_bn:
                    small, shift = fuse_bn(small, self.dilated_bns[index])
                    bias = bias + shift
                weight = weight + dilated_to_dense(small, dilation, size)
        return ConvSpec(weight, bias, self.stride, same_padding(self.kernel_size), (1,) * self.dim, self.in_channels)

    def merge(self) -> nn.Module:
        """The deploy form: one depthwise ``nn.Conv{dim}d`` equal to this op in eval mode."""
        return large_kernel_module(self.dense_kernel().to_module())

    def extra_repr(self) -> str:
        branches = ", ".join(f"{k}@{r}" for k, r in self.branches)
        return super().extra_repr() + f", branches=({branches}), use_bn={self.use_bn}, bias={self.has_bias}"
