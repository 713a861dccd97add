"""The order-flow CNN regressor (S78): order-flow images ``(N, 2, 2R + 1, T)`` (bid and ask volumes at price
offsets × time, :mod:`convzoo.data.orderflow`) → the next steps' realised volatility ``(N,)``.

Three blocks of 3×3 conv-ReLU with 2×2 max pools (16, 32, 64 channels), global average, ``Linear(64, 1)``;
volumes enter as ``log1p``. Departure: the paper's exact CNN (and its real LOBSTER data) are not reproduced; this
is a compact regressor of the same form on the synthetic generator.
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import Tensor, nn

from convzoo.core.validate import check_int
from convzoo.models.registration import register_variant

__all__ = ["OrderFlowCNN", "OrderFlowCNNConfig"]


@dataclass(frozen=True)
class OrderFlowCNNConfig:
    widths: tuple[int, ...] = (16, 32, 64)


class OrderFlowCNN(nn.Module):
    """log1p(volumes) → conv blocks with pools → average → linear → one value per image."""

    def __init__(self, config: OrderFlowCNNConfig) -> None:
        super().__init__()
        self.config = config
        layers, cin = [], 2
        for width in config.widths:
            width = check_int(width, "widths", "OrderFlowCNN")
            layers += [nn.Conv2d(cin, width, 3, padding=1), nn.ReLU(inplace=True), nn.MaxPool2d(2, ceil_mode=True)]
            cin = width
        self.features = nn.Sequential(*layers)
        self.head = nn.Linear(cin, 1)

    def forward(self, x: Tensor) -> Tensor:
        x = self.features(x.clamp_min(0).log1p())  # (N, C, h, w)
        return self.head(x.mean(dim=(2, 3)))[:, 0]  # (N,)


register_variant(
    "orderflow_cnn",
    OrderFlowCNN,
    OrderFlowCNNConfig(),
    papers=("orderflow-image",),
    params=None,
    params_source="no published count used (the paper's CNN is not reproduced layer for layer)",
    input_size=(2, 33, 32),
    summary="CNN regressor of short-term volatility from two-channel order-flow images",
    task="regress",
    takes_op=False,
    num_classes=0,
    test_size=32,
)
