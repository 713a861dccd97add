"""The two-layer MLP of Transformer-style blocks (ConvNeXt S67, MetaFormer S18, MLP-Mixer S60): fc → act → fc."""

from __future__ import annotations

from collections.abc import Callable

from torch import nn

from convzoo.core.validate import check_dim, check_int
from convzoo.registry import LAYERS

__all__ = ["Mlp"]

_CONV = {1: nn.Conv1d, 2: nn.Conv2d, 3: nn.Conv3d}


@LAYERS.register("mlp", kind="layer", dims=(1, 2, 3), papers=("convnext", "metaformer", "mlp-mixer"))
class Mlp(nn.Sequential):
    """Two-layer MLP (the channel MLP of ConvNeXt S67, MetaFormer S18, MLP-Mixer S60): ``fc2(act(fc1(x)))``.

    ``in_features → hidden_features → out_features`` (default ``in_features``). ``dim=None``: ``nn.Linear`` layers
    on the last dim of ``(..., C)`` (channels-last); ``dim`` 1, 2 or 3: 1×1 ``nn.Conv{dim}d`` layers on
    ``(N, C, *S)`` (channels-first, InceptionNeXt's ConvMLP). ``act`` builds the activation (GELU; MetaFormer uses
    StarReLU); ``bias`` applies to both layers. Children ``0``, ``1``, ``2`` are fc1, act, fc2.
    """

    def __init__(
        self,
        in_features: int,
        hidden_features: int,
        out_features: int | None = None,
        *,
        act: Callable[[], nn.Module] = nn.GELU,
        bias: bool = True,
        dim: int | None = None,
    ) -> None:
        out_features = in_features if out_features is None else out_features
        for what, value in (("in_features", in_features), ("hidden_features", hidden_features)):
            check_int(value, what, "mlp")
        check_int(out_features, "out_features", "mlp")
        if dim is None:
            super().__init__(
                nn.Linear(in_features, hidden_features, bias=bias),
                act(),
                nn.Linear(hidden_features, out_features, bias=bias),
            )
        else:
            conv = _CONV[check_dim(dim, "mlp")]
            super().__init__(
                conv(in_features, hidden_features, 1, bias=bias),
                act(),
                conv(hidden_features, out_features, 1, bias=bias),
            )
        self.in_features, self.hidden_features, self.out_features = in_features, hidden_features, out_features
