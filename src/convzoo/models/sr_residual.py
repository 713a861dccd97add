"""Global bicubic residual for an SR network (VDSR, Kim et al. 2016): ``out = net(x) + bicubic(x)``.

The network then learns the detail bicubic interpolation misses (HR − bicubic, about zero-mean) rather than the
whole image. This is a training device, not part of the nine SR papers' networks: the ``sr`` task applies it only
when its ``residual`` option is on (off by default, as the papers train). A network that adds the DIV2K mean back at
its end (``add_mean``, the EDSR lineage: CARN, TCSR, CFSR, SPAN) predicts image − mean; as a residual it predicts a
zero-mean difference, so the wrapper takes that constant back out. With the network's last layer zero the wrapper
returns bicubic exactly. Shapes: ``(N, 3, H, W) → (N, 3, sH, sW)``.
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn

from convzoo.core.validate import check_choice
from convzoo.models._sr import SCALES, MeanShift

__all__ = ["BicubicResidual"]


class BicubicResidual(nn.Module):
    """``net(x) − m + bicubic(x, scale)``, with ``m`` the mean ``net`` adds back at its end (zero where it adds none).

    The bicubic term is PyTorch's (a = −0.75, half-pixel centres, not clamped: the scores clamp the output), which
    exports to ONNX as one ``Resize`` (cubic). ``scale`` is the net's.
    """

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net
        self.scale = check_choice(getattr(net, "scale", None), SCALES, "scale", "BicubicResidual")
        add_mean = getattr(net, "add_mean", None)
        self.takes_mean = isinstance(add_mean, MeanShift)

    def forward(self, x: Tensor) -> Tensor:
        out = self.net(x)  # (N, 3, sH, sW)
        if self.takes_mean:
            out = out - self.net.add_mean.mean  # (1, 3, 1, 1): the constant the net added back
        return out + F.interpolate(x, scale_factor=self.scale, mode="bicubic", align_corners=False)

    def extra_repr(self) -> str:
        return f"scale={self.scale}, bicubic residual" + (", net's add_mean taken out" if self.takes_mean else "")
