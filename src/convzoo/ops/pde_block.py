"""The quasi-linear hyperbolic PDE block (S80) and the GL(n) weight symmetry of its residual stream."""

from __future__ import annotations

import copy

import torch
from torch import Tensor, nn

from convzoo.core.conv import run_conv, same_padding
from convzoo.core.validate import check_int
from convzoo.ops.base import Op
from convzoo.registry import OPS

__all__ = ["PDEBlock", "hardball", "transform_pde_block"]

_BN = {1: nn.BatchNorm1d, 2: nn.BatchNorm2d, 3: nn.BatchNorm3d}
_CONV = {1: nn.Conv1d, 2: nn.Conv2d, 3: nn.Conv3d}


def hardball(x: Tensor, radius: float) -> Tensor:
    """Radial clip of each pixel's channel vector to the ball of ``radius``: ``x · min(1, radius / |x|)``.

    ``x`` is ``(N, C, *S)``; the norm is over ``C``. It commutes with orthogonal channel maps only.
    """
    norm = x.norm(dim=1, keepdim=True)  # (N, 1, *S)
    return x * (radius / norm.clamp_min(torch.finfo(x.dtype).tiny)).clamp(max=1.0)


@OPS.register("pde_block", kind="grid", dims=(1, 2, 3), papers=("pde-symmetry",))
class PDEBlock(Op):
    """S80 "A Novel Convolutional Neural Network Architecture with a Continuous Symmetry": quasi-linear PDE block.

    One forward-Euler step of a quasi-linear hyperbolic system ``u_t = A(u) · D u`` on the residual stream
    ``u`` (N, C_in, *S) -> (N, C_out, *ceil(S/stride))::

        a, b = split(BN1(W1 u))                    # 1x1 conv to 2·width channels, two halves
        v    = BN3(W3 · BN2(D_k(a ⊙ b)))           # depthwise k×k conv width -> 2·width (stride), then 1x1
        out  = S u + v                             # S = identity, or 1x1 conv (stride) + BN when shapes change
        out  = hardball(out, sqrt(C_out))          # only in blocks with a projection skip (official default)

    The product ``a ⊙ b`` is the block's only nonlinearity (the coefficients depend linearly on ``u``);
    there is no activation on the residual stream, so the stream carries a continuous GL(n) symmetry:
    ``u -> Q u`` with ``W1 -> W1 Q_in^{-1}``, ``W3, BN3 -> Q_out · (folded W3, BN3)``, ``S -> Q_out S Q_in^{-1}``
    (see :func:`transform_pde_block`; orthogonal ``Q_out`` where the hardball clip is on).

    Defaults from the official code (liuyao12/ConvNets-PDE-perspective, ``PDEBlock``): width =
    4·C_in when C_in <= 128 else 2·C_in (``expansion``), depthwise kernel with 2 outputs per channel,
    bias-free convs each followed by BatchNorm, hardball radius² = C_out. ``bias`` is accepted for the
    contract; the BatchNorm shifts play its role.
    """

    def __init__(
        self,
        in_channels,
        out_channels,
        kernel_size=3,
        stride=1,
        *,
        dim=2,
        bias=True,
        expansion: int | None = None,
        hardball: bool | None = None,
    ):
        super().__init__(in_channels, out_channels, kernel_size, stride, dim=dim, bias=bias)
        name = type(self).registry_name
        if expansion is None:
            expansion = 4 if in_channels <= 128 else 2
        check_int(expansion, "expansion", name)
        if hardball is not None and not isinstance(hardball, bool):
            raise TypeError(f"{name}: hardball must be True, False or None (official rule), got {hardball!r}")
        self.width = expansion * in_channels
        projection = in_channels != out_channels or any(s != 1 for s in self.stride)
        self.use_hardball = projection if hardball is None else hardball
        bn = _BN[dim]
        self.conv1 = _CONV[dim](in_channels, 2 * self.width, 1, bias=False)
        self.bn1 = bn(2 * self.width)
        self.conv2 = _CONV[dim](
            self.width,
            2 * self.width,
            self.kernel_size,
            stride=self.stride,
            padding=same_padding(self.kernel_size),
            groups=self.width,
            bias=False,
        )
        self.bn2 = bn(2 * self.width)
        self.conv3 = _CONV[dim](2 * self.width, out_channels, 1, bias=False)
        self.bn3 = bn(out_channels)
        if projection:
            self.skip = nn.Sequential(
                _CONV[dim](in_channels, out_channels, 1, stride=self.stride, bias=False), bn(out_channels)
            )
        else:
            self.skip = nn.Identity()

    def forward(self, x: Tensor) -> Tensor:
        self.check_input(x)
        a, b = self.bn1(run_conv(self.conv1, x)).chunk(2, dim=1)  # 2 x (N, width, *S)
        v = self.bn3(run_conv(self.conv3, self.bn2(run_conv(self.conv2, a * b))))  # (N, C_out, *S')
        out = self._shortcut(x) + v
        if self.use_hardball:
            out = hardball(out, self.out_channels**0.5)
        return out

    def _shortcut(self, x: Tensor) -> Tensor:
        """``S u``: the identity, or the skip's modules in turn, each conv through ``run_conv``."""
        for module in self.skip if isinstance(self.skip, nn.Sequential) else (self.skip,):
            x = run_conv(module, x)
        return x

    def extra_repr(self) -> str:
        return super().extra_repr() + f", width={self.width}, hardball={self.use_hardball}"


def _fold_bn(conv: nn.Module, bn: nn.Module) -> tuple[Tensor, Tensor]:
    """Weight ``(C_out, C_in, *1)`` and bias of the eval-mode composition ``bn(conv(x))`` for a 1x1 conv."""
    scale = bn.weight / torch.sqrt(bn.running_var + bn.eps)  # (C_out,)
    weight = conv.weight * scale.view(-1, *([1] * (conv.weight.dim() - 1)))
    shift = bn.bias - scale * bn.running_mean
    if conv.bias is not None:
        shift = shift + scale * conv.bias
    return weight, shift


def _mix_1x1(conv: nn.Module, weight: Tensor, bias: Tensor, q_out: Tensor, q_in_inv: Tensor | None) -> nn.Module:
    """A 1x1 conv with weight ``q_out · weight · q_in_inv`` and bias ``q_out · bias`` (same stride as ``conv``)."""
    w = weight.flatten(1)  # (C_out, C_in)
    if q_in_inv is not None:
        w = w @ q_in_inv
    w = q_out @ w
    new = type(conv)(w.shape[1], w.shape[0], 1, stride=conv.stride, bias=True, dtype=w.dtype, device=w.device)
    new.weight.data.copy_(w.view_as(new.weight))  # (C_out, C_in, *1)
    new.bias.data.copy_(q_out @ bias)
    return new


def transform_pde_block(block: PDEBlock, q_in: Tensor, q_out: Tensor) -> PDEBlock:
    """The block with weights moved along its GL(n) symmetry: returns ``g`` with ``g(q_in · u) = q_out · block(u)``.

    Works on the eval-mode (inference) block: BN3 and the skip's BN are folded into their 1x1 convs first,
    since a batch-statistics BN would not commute with channel mixing. ``q_in`` is ``(C_in, C_in)`` and
    ``q_out`` is ``(C_out, C_out)``, both invertible; an identity skip needs ``q_in == q_out`` and the
    hardball clip needs an orthogonal ``q_out``. Raises ``ValueError`` otherwise.
    """
    name = type(block).registry_name
    if q_in.shape != (block.in_channels,) * 2 or q_out.shape != (block.out_channels,) * 2:
        raise ValueError(
            f"{name}: symmetry needs q_in ({block.in_channels}, {block.in_channels}) and q_out "
            f"({block.out_channels}, {block.out_channels}), got {tuple(q_in.shape)} and {tuple(q_out.shape)}"
        )
    if isinstance(block.skip, nn.Identity) and not torch.allclose(q_in, q_out):
        raise ValueError(f"{name}: a block with an identity skip moves along the symmetry only with q_in == q_out")
    eye = torch.eye(block.out_channels, dtype=q_out.dtype, device=q_out.device)
    if block.use_hardball and not torch.allclose(q_out @ q_out.T, eye, atol=1e-6 * block.out_channels):
        raise ValueError(f"{name}: the hardball clip commutes with orthogonal q_out only; got a non-orthogonal q_out")
    new = copy.deepcopy(block).eval()
    q_in_inv = torch.linalg.inv(q_in)
    with torch.no_grad():
        new.conv1.weight.copy_((new.conv1.weight.flatten(1) @ q_in_inv).view_as(new.conv1.weight))
        weight, shift = _fold_bn(new.conv3, new.bn3)
        new.conv3, new.bn3 = _mix_1x1(new.conv3, weight, shift, q_out, None), nn.Identity()
        if not isinstance(new.skip, nn.Identity):
            weight, shift = _fold_bn(new.skip[0], new.skip[1])
            new.skip = nn.Sequential(_mix_1x1(new.skip[0], weight, shift, q_out, q_in_inv), nn.Identity())
    return new
