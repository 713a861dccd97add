"""Semiring convolution (S47, Elliott 2019): one N-d convolution over any semiring.

Elliott's "Generalized Convolution and Efficient Language Recognition" writes convolution once for a
semiring ``(R, ⊕, ⊗, 0, 1)``; the ordinary convolution is ``(+, ×)``, grey-scale morphology is the
tropical ``(max, +)`` / ``(min, +)`` pair, boolean pattern matching is ``(∨, ∧)`` and the log semiring
``(log-sum-exp, +)`` is a soft maximum. Written as the cross-correlation every deep-learning conv
computes (kernel not flipped, like ``F.conv{dim}d``)::

    y[n, o, p] = ⊕_{i ∈ group(o), k}  w[o, i, k] ⊗ x[n, i, p·stride + k − padding]   (⊕ b[o] with a bias)

Positions outside the input hold the semiring's zero (the ⊕ identity and ⊗ annihilator): 0 for ``(+, ×)``,
−∞ for ``(max, +)``, ``(∨, ∧)`` and log-sum-exp, +∞ for ``(min, +)``, so padding never contributes a term.
With these zeros, ``(max, +)`` with weight ``w`` is exactly scipy's ``grey_dilation`` with the structuring
element ``flip(w)``, ``(min, +)`` with ``w`` is ``grey_erosion`` with ``−w``, and the 1-d ``(+, ×)`` "full"
convolution (padding ``k − 1``, flipped kernel) is ``numpy.polymul`` (tests/ops/test_semiring.py).

``(∨, ∧)`` is computed as ``(max, min)``: on truth values {0, 1} that is OR/AND, on real numbers the
bottleneck (fuzzy) semiring. Gradients: ``(+, ×)`` and log-sum-exp are smooth; ``(max, +)``, ``(min, +)``
and ``(max, min)`` pass the subgradient of the winning term (ties share it, as ``torch.maximum`` does).
Boolean tensors have no gradient.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from convzoo.core.conv import conv_nd, same_padding
from convzoo.core.init import kaiming_conv_init_
from convzoo.core.validate import check_choice, check_groups, ntuple
from convzoo.ops._layout import is_channels_last
from convzoo.ops.base import ConvSpec, Op
from convzoo.registry import OPS

__all__ = ["SEMIRINGS", "Semiring", "SemiringConv", "semiring_conv"]


@dataclass(frozen=True)
class Semiring:
    """A semiring as convzoo computes it: ``plus`` (⊕, elementwise) and ``times`` (⊗), their zero, and the
    ⊕-reduction over a tensor dimension."""

    name: str
    symbol: str
    zero: float

    def plus(self, a: Tensor, b: Tensor) -> Tensor:
        if self.name == "plus_times":
            return a + b
        if self.name in ("max_plus", "or_and"):
            return torch.maximum(a, b)
        if self.name == "min_plus":
            return torch.minimum(a, b)
        return torch.logaddexp(a, b)

    def times(self, a: Tensor, b: Tensor) -> Tensor:
        if self.name == "plus_times":
            return a * b
        if self.name == "or_and":
            return torch.minimum(a, b)
        return a + b

    def reduce(self, t: Tensor, dim: int) -> Tensor:
        if self.name == "plus_times":
            return t.sum(dim)
        if self.name in ("max_plus", "or_and"):
            return t.amax(dim)
        if self.name == "min_plus":
            return t.amin(dim)
        return torch.logsumexp(t, dim)


SEMIRINGS: dict[str, Semiring] = {
    s.name: s
    for s in (
        Semiring("plus_times", "(+, ×)", 0.0),
        Semiring("max_plus", "(max, +)", -math.inf),
        Semiring("min_plus", "(min, +)", math.inf),
        Semiring("or_and", "(∨, ∧)", -math.inf),
        Semiring("log_sum_exp", "(log-sum-exp, +)", -math.inf),
    )
}


def _zero(semiring: Semiring, dtype: torch.dtype) -> float | bool:
    if dtype == torch.bool:
        return False
    return semiring.zero


def semiring_conv(
    x: Tensor,
    weight: Tensor,
    bias: Tensor | None = None,
    *,
    semiring: str = "max_plus",
    stride: int | Sequence[int] = 1,
    padding: int | Sequence[int] = 0,
    groups: int = 1,
) -> Tensor:
    """N-d convolution (cross-correlation) of ``x`` with ``weight`` over ``semiring`` (a key of ``SEMIRINGS``).

    ``x``: ``(N, C_in, *S)``; ``weight``: ``(C_out, C_in / groups, *k)``; ``bias``: ``(C_out,)`` combined with ⊕;
    ``padding`` (symmetric, per dimension) is filled with the semiring's zero. Returns
    ``(N, C_out, *((S + 2·padding − k) // stride + 1))`` in ``x``'s memory format. ``(+, ×)`` runs
    ``F.conv{dim}d`` itself.

    >>> x = torch.tensor([[[0.0, 3.0, 1.0, 0.0]]])
    >>> semiring_conv(x, torch.zeros(1, 1, 3), semiring="max_plus", padding=1)  # flat dilation: running max
    tensor([[[3., 3., 3., 1.]]])
    """
    ring = SEMIRINGS[check_choice(semiring, tuple(SEMIRINGS), "semiring", "semiring_conv")]
    dim = weight.dim() - 2
    strides = ntuple(stride, dim, "stride", "semiring_conv")
    pads = ntuple(padding, dim, "padding", "semiring_conv")
    if ring.name == "plus_times" and x.dtype != torch.bool:
        return conv_nd(x, weight, bias, stride=strides, padding=pads, groups=groups)
    batch, c_in = x.shape[:2]
    c_out, per_group, *kernel = weight.shape
    xp = F.pad(x, [p for p in reversed(pads) for _ in range(2)], value=_zero(ring, x.dtype))  # (N, C_in, *(S + 2p))
    out_size = [(s - k) // st + 1 for s, k, st in zip(xp.shape[2:], kernel, strides, strict=True)]
    if any(s <= 0 for s in out_size):
        raise ValueError(f"semiring_conv: kernel {tuple(kernel)} is larger than the padded input {tuple(xp.shape[2:])}")
    xp = xp.view(batch, groups, 1, per_group, *xp.shape[2:])  # (N, g, 1, C_in/g, *S_padded)
    w = weight.view(groups, c_out // groups, per_group, *kernel)  # (g, C_out/g, C_in/g, *k)
    spread = (1,) * dim
    # A reduction writes its result contiguous in the order of its input's dims, and an element-wise op follows that
    # order where strides do not decide (broadcast dims). For a channels-last x the loop therefore runs on views with
    # the channel dims last, (N, *S, g, C_out/g, C_in/g), so every term comes out channels-last.
    channels_last = is_channels_last(x)
    if per_group == 1 and ring.name != "log_sum_exp" and not channels_last and not torch.is_grad_enabled():
        out = _tiled_inference(xp, w, ring, out_size, strides)  # (N, g, C_out/g, *S_out): morphology's case
        out = out.reshape(batch, c_out, *out_size)
        return out if bias is None else ring.plus(out, bias.view(1, c_out, *spread))
    loop_view = (lambda t: t.movedim((1, 2, 3), (-3, -2, -1))) if channels_last else (lambda t: t)
    inputs = -1 if channels_last else 3  # the dim of a group's input channels in the loop's views
    terms: list[Tensor] = []
    out: Tensor | None = None
    for offset in itertools.product(*(range(k) for k in kernel)):
        window = tuple(slice(o, o + (n - 1) * st + 1, st) for o, n, st in zip(offset, out_size, strides, strict=True))
        # shapes below in the (N, g, C_out/g, C_in/g, *S) order; channels-last views have the channel dims last
        xs = loop_view(xp[(..., *window)])  # (N, g, 1, C_in/g, *S_out)
        wk = w[(..., *offset)].reshape(1, groups, c_out // groups, per_group, *spread)  # (1, g, C_out/g, C_in/g, 1…)
        wk = loop_view(wk)
        term = ring.times(xs, wk)  # (N, g, C_out/g, C_in/g, *S_out)
        if ring.name == "log_sum_exp":
            terms.append(term)  # one log-sum-exp over every term at the end keeps −∞ padding NaN-free
            continue
        term = term.squeeze(inputs) if per_group == 1 else ring.reduce(term, inputs)  # (N, g, C_out/g, *S_out)
        if out is None:
            out = term
        elif torch.is_grad_enabled() or x.dtype == torch.bool:
            out = ring.plus(out, term)
        else:
            out = _plus_(ring, out, term)  # out is this function's own buffer, never a view of x
    if ring.name == "log_sum_exp":
        out = torch.logsumexp(torch.cat(terms, dim=inputs), dim=inputs)  # (N, g, C_out/g, *S_out)
    if channels_last:
        out = out.movedim((-2, -1), (1, 2))  # the loop's (N, *S_out, g, C_out/g) viewed as (N, g, C_out/g, *S_out)
    out = out.reshape(batch, c_out, *out_size)  # (N, C_out, *S_out), a view
    if bias is not None:
        out = ring.plus(out, bias.view(1, c_out, *spread))
    return out


TILE_ELEMENTS = 1 << 18  # output elements per tile (1 MB of float32): measured best of 2^12…2^22 on 64×512²


def _tiled_inference(xp: Tensor, w: Tensor, ring: Semiring, out_size: list[int], strides: tuple[int, ...]) -> Tensor:
    """One input channel per group (grey-scale morphology), without autograd: ``(N, g, 1, 1, *S_padded)`` and
    ``(g, C_out/g, 1, *k)`` → ``(N, g, C_out/g, *S_out)``, accumulated in place tile by tile.

    A whole-tensor pass per kernel offset streams every plane through memory once per offset (memory-bound from
    a few MB on); tiles of ``TILE_ELEMENTS`` outputs (whole planes of a few groups, or rows of one plane) are
    finished, all offsets, while they sit in cache.
    """
    batch, groups, per_out = xp.shape[0], w.shape[0], w.shape[1]
    kernel = w.shape[3:]
    out = xp.new_empty(batch, groups, per_out, *out_size)
    row_size = per_out * math.prod(out_size[1:])  # outputs of one row of one group's planes
    rows = max(1, min(out_size[0], TILE_ELEMENTS // max(row_size, 1)))
    group_step = max(1, TILE_ELEMENTS // (row_size * out_size[0])) if rows == out_size[0] else 1
    buffer = xp.new_empty(min(group_step, groups) * per_out * rows * math.prod(out_size[1:]))
    spread = (1,) * len(out_size)
    for n, g0, r0 in itertools.product(range(batch), range(0, groups, group_step), range(0, out_size[0], rows)):
        g1, r1 = min(groups, g0 + group_step), min(out_size[0], r0 + rows)
        tile = out[n, g0:g1, :, r0:r1]  # (g', C_out/g, r', *S_out[1:])
        term = buffer[: tile.numel()].view(tile.shape)
        for index, offset in enumerate(itertools.product(*(range(k) for k in kernel))):
            first = slice(offset[0] + r0 * strides[0], offset[0] + (r1 - 1) * strides[0] + 1, strides[0])
            tail = zip(offset[1:], out_size[1:], strides[1:], strict=True)
            rest = tuple(slice(o, o + (m - 1) * st + 1, st) for o, m, st in tail)
            xs = xp[n, g0:g1, :, 0][(slice(None), slice(None), first, *rest)]  # (g', 1, r', *S_out[1:])
            wk = w[g0:g1, :, 0][(..., *offset)].view(g1 - g0, per_out, *spread)  # (g', C_out/g, 1…)
            torch.add(xs, wk, out=term) if ring.name != "or_and" else torch.minimum(xs, wk, out=term)
            if index == 0:
                tile.copy_(term)
            else:
                _plus_(ring, tile, term)
    return out


def _plus_(ring: Semiring, acc: Tensor, term: Tensor) -> Tensor:
    """``acc ⊕= term`` in place (inference only: saves one allocation per kernel offset)."""
    if ring.name in ("max_plus", "or_and"):
        return torch.maximum(acc, term, out=acc)
    if ring.name == "min_plus":
        return torch.minimum(acc, term, out=acc)
    return acc.add_(term)


def _init_weight_(weight: Tensor, semiring: str) -> None:
    """``nn.ConvNd``'s init for ``(+, ×)``; a near-flat element (small noise around 0) for the tropical and
    bottleneck semirings; ``−log(fan-in)`` plus noise for log-sum-exp, so it starts as a soft mean of the window."""
    if semiring == "plus_times":
        kaiming_conv_init_(weight, None)
        return
    nn.init.uniform_(weight, -0.1, 0.1)
    if semiring == "or_and":
        weight.add_(1.0)  # ⊗ = min with 1: passes the input through, as "AND true" does
    elif semiring == "log_sum_exp":
        weight.sub_(math.log(weight[0].numel()))


@OPS.register("semiring", kind="grid", dims=(1, 2, 3), papers=("semiring-conv",))
class SemiringConv(Op):
    """Semiring convolution (S47): one N-d conv over (+,×), (max,+), (min,+), (∨,∧) or log-sum-exp; default (max,+).

    Follows the grid contract: "same" padding with the semiring's zero, output ``ceil(S / stride)``. Options:
    ``semiring`` (a key of ``SEMIRINGS``; default ``"max_plus"``, grey-scale dilation) and ``groups``
    (``groups = C_in = C_out`` gives one structuring element per channel, as morphology does). Only
    ``semiring="plus_times"`` is linear, so only it has a ``dense_kernel()``; the registry marks the op non-linear.
    """

    def __init__(
        self, in_channels, out_channels, kernel_size=3, stride=1, *, dim=2, bias=True, semiring="max_plus", groups=1
    ):
        super().__init__(in_channels, out_channels, kernel_size, stride, dim=dim, bias=bias)
        name = type(self).registry_name
        self.semiring = check_choice(semiring, tuple(SEMIRINGS), "semiring", name)
        self.groups = check_groups(groups, name, in_channels=in_channels, out_channels=out_channels)
        self.weight = nn.Parameter(torch.empty(out_channels, in_channels // groups, *self.kernel_size))
        self.bias = nn.Parameter(torch.empty(out_channels)) if bias else None
        with torch.no_grad():
            _init_weight_(self.weight, semiring)
            if self.bias is not None:
                # ⊕ with the bias: 0 under (+, ×); a threshold under (max, +) / (min, +), started where it never binds
                if semiring == "plus_times":
                    bound = 1 / math.sqrt(self.weight[0].numel())
                    self.bias.uniform_(-bound, bound)
                else:
                    self.bias.fill_(1e4 if semiring == "min_plus" else -1e4)

    def forward(self, x: Tensor) -> Tensor:
        self.check_input(x)
        return semiring_conv(
            x,
            self.weight,
            self.bias,
            semiring=self.semiring,
            stride=self.stride,
            padding=same_padding(self.kernel_size),
            groups=self.groups,
        )

    def dense_kernel(self) -> ConvSpec:
        if self.semiring != "plus_times":
            raise NotImplementedError(
                f"{type(self).registry_name}: semiring {self.semiring!r} is not linear shift-invariant: it has no "
                "dense kernel (only semiring='plus_times' has)"
            )
        bias = None if self.bias is None else self.bias.detach().clone()
        padding = same_padding(self.kernel_size)
        return ConvSpec(self.weight.detach().clone(), bias, self.stride, padding, (1,) * self.dim, self.groups)

    def macs(self, input_size: Sequence[int]) -> int:
        """Semiring multiply-accumulates (one ⊗ and one ⊕ each) per sample: the flop counter sees no max or add."""
        return (
            self.out_channels
            * (self.in_channels // self.groups)
            * math.prod(self.kernel_size)
            * math.prod(self.output_size(input_size))
        )

    def extra_repr(self) -> str:
        groups = f", groups={self.groups}" if self.groups != 1 else ""
        return super().extra_repr() + f", semiring={self.semiring}{groups}, bias={self.bias is not None}"
