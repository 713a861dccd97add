"""The plain CNN of the wave-simulator study (S13, "A priori compression of convolutional neural networks for wave
simulators") and its a-priori CP-compressed form (``op="cp"``).

``(N, 2, H, W)`` — the two latest frames ``(u⁻, u)`` of a wave field — → the next frame ``(N, 1, H, W)``, any size:
``depth`` same-padded ``kernel_size``² convolutions (ReLU between them, ``channels`` wide) predict the change
``u⁺ − u``, scaled by a learned gain that starts at 0 (so every form starts as persistence, ``u⁺ = u``,
whatever its initial scale; a CP product of random factors starts far larger than a conv) and added to ``u``.
``op="cp"`` builds every convolution as the CP-decomposed convolution of rank ``rank``
(1×1 to R channels, one depthwise one-way filter per axis, 1×1 out: trained in that form from the start, the
paper's *a priori* compression), so the study compares error against parameters of the two forms.

Departures: the paper's networks and sizes are not reproduced; this is the smallest net that shows the trade-off.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from convzoo.core.validate import check_int, check_odd
from convzoo.models._dense import register_dense
from convzoo.ops.base import create_op

__all__ = ["WaveCNN", "WaveCNNConfig"]


@dataclass(frozen=True)
class WaveCNNConfig:
    channels: int = 32
    depth: int = 4
    kernel_size: int = 5
    in_chans: int = 2
    op: str | None = None
    rank: int | None = None


class WaveCNN(nn.Module):
    """Next-frame CNN; see the module docstring."""

    name = "wavecnn"

    def __init__(self, cfg: WaveCNNConfig) -> None:
        super().__init__()
        owner = "wavecnn"
        check_int(cfg.channels, "channels", owner)
        check_int(cfg.depth, "depth", owner, low=2)
        check_odd(cfg.kernel_size, "kernel_size", owner)
        check_int(cfg.in_chans, "in_chans", owner, low=2)
        if cfg.rank is not None:
            check_int(cfg.rank, "rank", owner)
            if cfg.op != "cp":
                raise ValueError(f"wavecnn: rank={cfg.rank} is the rank of op='cp', but op is {cfg.op!r}")
        widths = [cfg.in_chans] + [cfg.channels] * (cfg.depth - 1) + [1]
        layers: list[nn.Module] = []
        for i, (a, b) in enumerate(zip(widths, widths[1:], strict=False)):
            if cfg.op is None:
                layers.append(nn.Conv2d(a, b, cfg.kernel_size, padding=cfg.kernel_size // 2))
            else:
                options = {} if cfg.rank is None else {"rank": min(cfg.rank, a, b) if cfg.op == "cp" else cfg.rank}
                try:
                    layers.append(create_op(cfg.op, a, b, cfg.kernel_size, 1, bias=True, **options))
                except (ValueError, TypeError) as error:
                    raise ValueError(f"wavecnn: op {cfg.op!r} cannot replace conv {i}: {error}") from None
            if i < len(widths) - 2:
                layers.append(nn.ReLU(inplace=True))
        self.body = nn.Sequential(*layers)
        self.gain = nn.Parameter(torch.zeros(1))  # starts as persistence (u⁺ = u), whatever the op's init scale

    def forward(self, x: Tensor) -> Tensor:
        return x[:, -1:] + self.gain * self.body(x)  # (N, 1, H, W): u + predicted change


register_dense(
    "wavecnn",
    WaveCNN,
    WaveCNNConfig(),
    papers=("apriori-compression",),
    params=None,
    params_source="the paper's networks are not reproduced (a small plain CNN for the comparison)",
    summary="Next-frame CNN for the wave simulator (S13); op='cp' gives its a-priori CP-compressed form",
    kind="field",
    input_size=(2, 32, 32),
)
