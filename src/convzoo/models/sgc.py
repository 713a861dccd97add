"""SGC (S73, Wu et al. 2019) as a node classifier: ``softmax(S^K X Θ)`` with ``S^K X`` precomputed once."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from torch import Tensor, nn

from convzoo.ops.sgc import SGConv
from convzoo.registry import MODELS, ModelInfo

__all__ = ["SGC", "SGCConfig"]


@dataclass(frozen=True)
class SGCConfig:
    """``in_features`` and ``num_classes`` of the graph; ``k`` propagation steps (the paper's default 2)."""

    in_features: int = 34
    num_classes: int = 2
    k: int = 2


class SGC(nn.Module):
    """SGC: the K-step propagation cached on the first call, then one linear layer to class logits ``(V, classes)``."""

    def __init__(self, config: SGCConfig) -> None:
        super().__init__()
        self.config = config
        self.conv = SGConv(config.in_features, config.num_classes, config.k)

    def forward(self, x: Tensor, edge_index: Tensor) -> Tensor:
        return self.conv(x, edge_index)


def _build(**overrides: Any) -> SGC:
    return SGC(replace(SGCConfig(), **overrides))


MODELS.register(
    "sgc",
    kind="graph",
    dims=(1,),
    papers=("sgc",),
    summary="S73 SGC: S^K X precomputed (K = 2), then a linear classifier (transductive node classification)",
    info=ModelInfo(
        family=SGC,
        config=SGCConfig(),
        params=34 * 2 + 2,
        params_source="in_features·classes + classes",
        input_size=(34,),
        takes_op=False,
        num_classes=2,
    ),
)(_build)
