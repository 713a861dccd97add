"""ESPCN (S108): features extracted in LR space, the image assembled by a sub-pixel convolution (``pixel_shuffle``)."""

from __future__ import annotations

from dataclasses import dataclass

from torch import Tensor, nn

from convzoo.core.validate import check_int
from convzoo.models._sr import PixelShuffleTail, check_scale, register_sr

__all__ = ["ESPCN", "ESPCNConfig"]


@dataclass(frozen=True)
class ESPCNConfig:
    """The paper's l = 3 network: (f1, n1) = (5, 64), (f2, n2) = (3, 32), f3 = 3, tanh between layers."""

    scale: int = 3
    widths: tuple[int, int] = (64, 32)
    kernels: tuple[int, int, int] = (5, 3, 3)
    channels: int = 3


class ESPCN(nn.Module):
    """Two tanh convs in LR space, then one conv to ``C·s²`` maps rearranged by ``pixel_shuffle(s)`` (N, C, sH, sW)."""

    def __init__(self, cfg: ESPCNConfig) -> None:
        super().__init__()
        self.scale = check_scale(cfg.scale, "espcn")
        n1, n2 = (check_int(w, "widths", "espcn") for w in cfg.widths)
        f1, f2, f3 = cfg.kernels
        self.features = nn.Sequential(
            nn.Conv2d(cfg.channels, n1, f1, padding=f1 // 2),
            nn.Tanh(),
            nn.Conv2d(n1, n2, f2, padding=f2 // 2),
            nn.Tanh(),
        )
        self.sub_pixel = PixelShuffleTail(n2, cfg.channels, self.scale, f3)

    def forward(self, x: Tensor) -> Tensor:
        return self.sub_pixel(self.features(x))  # (N, C, sH, sW)


register_sr(
    "espcn",
    ESPCN,
    ESPCNConfig(),
    papers=("espcn",),
    params=None,
    params_source="the paper prints no parameter count; the layout is its Sec. 3 / Table 1 (5-3-3, 64-32 maps, "
    "l = 3); on RGB at ×3 it counts 31,131 (22,729 on the Y channel the paper trains)",
    summary="S108 ESPCN: 5×5/64, 3×3/32 tanh convs in LR space, 3×3 sub-pixel conv (pixel_shuffle) to HR",
)
