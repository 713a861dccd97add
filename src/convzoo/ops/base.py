"""The operator contract shared by every convzoo operator.

An operator maps ``(N, C_in, *S)`` to ``(N, C_out, *ceil(S / stride))`` with "same" padding, so
it can stand wherever an ``nn.Conv{1,2,3}d`` with odd kernel and ``padding=k // 2`` stood.
Linear shift-invariant operators also return a :class:`ConvSpec` from ``dense_kernel()`` such
that ``F.conv{dim}d(x, **spec.kwargs())`` equals ``op(x)`` exactly.
"""

from __future__ import annotations

import inspect
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any, ClassVar

import torch
from torch import Tensor, nn

from convzoo.core.conv import CONV_FUNCTIONS, conv_nd, same_padding
from convzoo.core.validate import check_conv_args
from convzoo.kernels.large_kernel import STRIP_WIDTH, depthwise_conv, large_kernel_module
from convzoo.registry import OPS, Entry

__all__ = [
    "BuiltKernelOp",
    "ConvSpec",
    "Op",
    "create_op",
    "list_ops",
    "option_names",
    "check_options",
    "kernel_for",
]

_CONV_MODULE = {1: nn.Conv1d, 2: nn.Conv2d, 3: nn.Conv3d}


@dataclass(frozen=True)
class ConvSpec:
    """Arguments of ``F.conv{dim}d`` that reproduce a linear shift-invariant operator exactly.

    ``weight`` is ``(C_out, C_in / groups, *k)``; ``bias`` is ``(C_out,)`` or ``None``.
    """

    weight: Tensor
    bias: Tensor | None
    stride: tuple[int, ...]
    padding: tuple[int, ...]
    dilation: tuple[int, ...]
    groups: int = 1

    @property
    def dim(self) -> int:
        return self.weight.dim() - 2

    def kwargs(self) -> dict[str, Any]:
        """Keyword arguments for ``F.conv{dim}d(x, **spec.kwargs())``."""
        return {
            "weight": self.weight,
            "bias": self.bias,
            "stride": self.stride,
            "padding": self.padding,
            "dilation": self.dilation,
            "groups": self.groups,
        }

    def __call__(self, x: Tensor) -> Tensor:
        return CONV_FUNCTIONS[self.dim](x, **self.kwargs())

    def to(self, *args: Any, **kwargs: Any) -> ConvSpec:
        bias = None if self.bias is None else self.bias.to(*args, **kwargs)
        return replace(self, weight=self.weight.to(*args, **kwargs), bias=bias)

    def to_module(self) -> nn.Module:
        """An ``nn.Conv{dim}d`` holding this spec (the deploy form of the operator).

        A depthwise kernel wider than PyTorch's fast CPU depthwise kernel (2-d, width > 13) comes back as a
        :class:`~convzoo.kernels.large_kernel.DepthwiseConv2d` (still an ``nn.Conv2d``, same state dict) run by the
        large-kernel path; every other spec as a plain ``nn.Conv{dim}d``.
        """
        out_channels, in_per_group, *kernel_size = self.weight.shape
        conv = _CONV_MODULE[self.dim](
            in_per_group * self.groups,
            out_channels,
            tuple(kernel_size),
            stride=self.stride,
            padding=self.padding,
            dilation=self.dilation,
            groups=self.groups,
            bias=self.bias is not None,
            device=self.weight.device,
            dtype=self.weight.dtype,
        )
        with torch.no_grad():
            conv.weight.copy_(self.weight)
            if self.bias is not None:
                conv.bias.copy_(self.bias)
        depthwise = self.groups == out_channels == in_per_group * self.groups
        if self.dim == 2 and depthwise and kernel_size[-1] > STRIP_WIDTH:
            return large_kernel_module(conv)
        return conv


class Op(nn.Module):
    """Base class of convzoo operators: validates the contract arguments and the input.

    Subclasses call ``super().__init__(in_channels, out_channels, kernel_size, stride, dim=dim,
    bias=bias)`` first, then build their parameters, and start ``forward`` with
    ``self.check_input(x)``. Class attributes state what the operator needs:

    - ``same_channels``: ``in_channels`` must equal ``out_channels`` (depthwise mixers, attention);
    - ``odd_kernel``: every kernel size must be odd (symmetric "same" padding);
    - ``max_stride``: the largest stride the operator honours.
    """

    registry_name: ClassVar[str] = "op"
    same_channels: ClassVar[bool] = False
    odd_kernel: ClassVar[bool] = True
    max_stride: ClassVar[int | None] = None

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int | Sequence[int] = 3,
        stride: int | Sequence[int] = 1,
        *,
        dim: int = 2,
        bias: bool = True,
    ) -> None:
        super().__init__()
        name = type(self).registry_name
        kernel, strides = check_conv_args(
            name,
            in_channels,
            out_channels,
            kernel_size,
            stride,
            dim,
            same_channels=self.same_channels,
            odd_kernel=self.odd_kernel,
            max_stride=self.max_stride,
        )
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.kernel_size = kernel
        self.stride = strides
        self.dim = dim
        self.has_bias = bool(bias)

    def check_input(self, x: Tensor) -> None:
        """Raise ``ValueError`` naming the operator unless ``x`` is ``(N, in_channels, *S)``."""
        if x.dim() != self.dim + 2:
            raise ValueError(
                f"{type(self).registry_name}: expected a {self.dim + 2}-d input (N, C, *{self.dim} spatial sizes) "
                f"for dim={self.dim}, got shape {tuple(x.shape)}"
            )
        if x.shape[1] != self.in_channels:
            raise ValueError(
                f"{type(self).registry_name}: expected {self.in_channels} input channels, "
                f"got {x.shape[1]} (input shape {tuple(x.shape)})"
            )

    def output_size(self, size: Sequence[int]) -> tuple[int, ...]:
        """Spatial output size for a spatial input size: ``ceil(S / stride)``."""
        return tuple(-(-s // st) for s, st in zip(size, self.stride, strict=True))

    def dense_kernel(self) -> ConvSpec:
        """The single convolution equal to this operator (linear shift-invariant operators only)."""
        raise NotImplementedError(f"{type(self).registry_name} is not linear shift-invariant: it has no dense kernel")

    def extra_repr(self) -> str:
        k = self.kernel_size if len(set(self.kernel_size)) > 1 else self.kernel_size[0]
        s = self.stride if len(set(self.stride)) > 1 else self.stride[0]
        return f"{self.in_channels}, {self.out_channels}, kernel_size={k}, stride={s}, dim={self.dim}"


class BuiltKernelOp(Op):
    """An operator that is one convolution whose kernel is built from its parameters by ``kernel()``.

    Subclasses (DCLS, SMPConv, weighted conv, ...) set ``self.groups`` and ``self.bias`` and define
    ``kernel() -> (C_out, C_in / groups, *kernel_size)``; the forward pass, the dense kernel and the
    representation follow from it. A depthwise kernel runs on :func:`~convzoo.kernels.large_kernel.depthwise_conv`,
    which takes wide NCHW kernels past the CPU's width cliff (DCLS's 17-wide kernel: 55 → 4.6 ms NCHW).
    """

    groups: int = 1
    bias: Tensor | None

    def kernel(self) -> Tensor:
        raise NotImplementedError

    def forward(self, x: Tensor) -> Tensor:
        self.check_input(x)
        padding = same_padding(self.kernel_size)
        if self.groups == self.in_channels == self.out_channels:  # depthwise: past the CPU's NCHW width cliff too
            return depthwise_conv(x, self.kernel(), self.bias, stride=self.stride, padding=padding)
        return conv_nd(x, self.kernel(), self.bias, stride=self.stride, padding=padding, groups=self.groups)

    def dense_kernel(self) -> ConvSpec:
        with torch.no_grad():
            weight = self.kernel()
        bias = None if self.bias is None else self.bias.detach().clone()
        return ConvSpec(weight, bias, self.stride, same_padding(self.kernel_size), (1,) * self.dim, self.groups)

    def _extra(self) -> str:
        """The subclass's own settings for ``extra_repr``, each starting with ", "."""
        return ""

    def extra_repr(self) -> str:
        groups = f", groups={self.groups}" if self.groups != 1 else ""
        return super().extra_repr() + self._extra() + groups + f", bias={self.bias is not None}"


def option_names(cls: type) -> list[str]:
    """The keyword-only options an operator class accepts beyond the contract arguments."""
    contract = {"self", "in_channels", "out_channels", "kernel_size", "stride", "dim", "bias"}
    params = inspect.signature(cls.__init__).parameters.values()
    return [p.name for p in params if p.name not in contract and p.kind is not inspect.Parameter.VAR_KEYWORD]


def check_options(name: str, options: dict[str, Any]) -> list[str]:
    """Raise ``TypeError`` naming the op unless every key of ``options`` is one it takes; return those it takes."""
    accepted = option_names(OPS.get(name).obj)
    unknown = sorted(set(options) - set(accepted))
    if unknown:
        takes = ", ".join(accepted) if accepted else "no options"
        raise TypeError(f"{name}: unknown option(s) {', '.join(unknown)}; it takes {takes}")
    return accepted


def create_op(
    name: str,
    in_channels: int,
    out_channels: int,
    kernel_size: int | Sequence[int] = 3,
    stride: int | Sequence[int] = 1,
    *,
    dim: int = 2,
    bias: bool = True,
    **options: Any,
) -> Op:
    """Build the registered operator ``name`` under the operator contract.

    >>> op = create_op("shift", 16, 32, stride=2)
    >>> op(torch.randn(1, 16, 9, 9)).shape
    torch.Size([1, 32, 5, 5])
    """
    entry: Entry = OPS.get(name)
    if dim not in entry.dims:
        raise ValueError(f"{name}: supports dim in {entry.dims}, got dim={dim}")
    check_options(name, options)
    return entry.obj(in_channels, out_channels, kernel_size, stride, dim=dim, bias=bias, **options)


def kernel_for(name: str, wanted: int = 3) -> int:
    """``wanted``, or the smallest kernel size op ``name`` accepts when it needs more (``dilated_reparam``: 5)."""
    return max(wanted, getattr(OPS.get(name).obj, "contract_kernel_size", 1))


def list_ops(pattern: str | None = None, *, kind: str | None = None, linear: bool | None = None) -> list[str]:
    """Registered operator names, optionally filtered by glob ``pattern``, ``kind`` and ``linear``."""
    return [
        e.name
        for e in OPS.entries()
        if (pattern is None or e.name in OPS.names(pattern))
        and (kind is None or e.kind == kind)
        and (linear is None or e.linear == linear)
    ]
