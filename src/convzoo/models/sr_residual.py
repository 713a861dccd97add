"""Global bicubic residual for an SR network (VDSR, Kim et al. 2016): ``out = net(x) + bicubic(x)``.

The network then learns the detail bicubic interpolation misses (HR − bicubic, about zero-mean) rather than the
whole image. This is a training device, not part of the nine SR papers' networks: the ``sr`` task applies it only
when its ``residual`` option is on (off by default, as the papers train). A network that adds the DIV2K mean back at
its end (``add_mean``, the EDSR lineage: CARN, TCSR, CFSR, SPAN) predicts image − mean; as a residual it predicts a
zero-mean difference, so the wrapper takes that constant back out. A network whose paper adds an interpolation of
its input itself (A2N and SCNet add bilinear, ``own_skip="bilinear"``) has that skip swapped for bicubic: the
wrapper subtracts the same bilinear term. With the network's last layer zero the wrapper returns bicubic exactly.
Shapes: ``(N, 3, H, W) → (N, 3, sH, sW)``.
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn

from convzoo.core.validate import check_choice
from convzoo.models._sr import SCALES, MeanShift

__all__ = ["BicubicResidual"]


OWN_SKIPS = (None, "bilinear")


class BicubicResidual(nn.Module):
    """``net(x) − m − own(x) + bicubic(x, scale)``: ``m`` the mean ``net`` adds back at its end (zero where it adds
    none), ``own`` the interpolation ``net`` adds itself (``own_skip``; zero for ``None``).

    The interpolations are PyTorch's (bicubic a = −0.75, half-pixel centres, not clamped: the scores clamp the
    output), which export to ONNX as ``Resize``. ``scale`` is the net's.
    """

    def __init__(self, net: nn.Module, own_skip: str | None = None) -> None:
        super().__init__()
        self.net = net
        self.scale = check_choice(getattr(net, "scale", None), SCALES, "scale", "BicubicResidual")
        self.own_skip = check_choice(own_skip, OWN_SKIPS, "own_skip", "BicubicResidual")
        add_mean = getattr(net, "add_mean", None)
        self.takes_mean = isinstance(add_mean, MeanShift)

    def forward(self, x: Tensor) -> Tensor:
        out = self.net(x)  # (N, 3, sH, sW)
        if self.takes_mean:
            out = out - self.net.add_mean.mean  # (1, 3, 1, 1): the constant the net added back
        if self.own_skip is not None:
            out = out - F.interpolate(x, scale_factor=self.scale, mode=self.own_skip, align_corners=False)
        return out + F.interpolate(x, scale_factor=self.scale, mode="bicubic", align_corners=False)

    def extra_repr(self) -> str:
        taken = ", net's add_mean taken out" if self.takes_mean else ""
        swapped = f", replaces the net's {self.own_skip} skip" if self.own_skip else ""
        return f"scale={self.scale}, bicubic residual{taken}{swapped}"
