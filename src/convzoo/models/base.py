"""The model contract: the uniform classifier API every convzoo classifier offers.

A family is one ``nn.Module`` class (a :class:`ConvNet`) plus a config dataclass; a variant is a
registration that fills the config (:mod:`convzoo.models.registration`). Every classifier offers:

- ``forward_stages(x)`` → the list of stage outputs (what ``features_only=True`` returns);
- ``forward_features(x)`` → the last feature map; ``forward_head(x, pre_logits=False)``;
- ``reset_classifier(num_classes)``; ``feature_info`` (one :class:`FeatureInfo` per stage).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from torch import Tensor, nn

from convzoo.core.validate import check_int

__all__ = ["FeatureInfo", "ClassifierHead", "ConvNet", "FeatureExtractor"]


@dataclass(frozen=True)
class FeatureInfo:
    """One stage output: the module that produces it, its channels and its stride from the input."""

    module: str
    channels: int
    reduction: int


class ClassifierHead(nn.Module):
    """Global pool → optional norm → dropout → linear: the head of most classifiers.

    ``norm`` is applied to the pooled ``(N, C)`` vector (ConvNeXt's LayerNorm); ``hidden`` adds
    an MLP layer before the classifier (MetaFormer's ``MlpHead``).
    """

    def __init__(
        self,
        in_features: int,
        num_classes: int,
        *,
        norm: nn.Module | None = None,
        drop: float = 0.0,
        hidden: int | None = None,
        act: Callable[[], nn.Module] = nn.GELU,
    ) -> None:
        super().__init__()
        self.in_features = in_features
        self.norm = norm if norm is not None else nn.Identity()
        self.hidden = None
        if hidden is not None:
            self.hidden = nn.Sequential(nn.Linear(in_features, hidden), act(), nn.LayerNorm(hidden))
        self.drop = nn.Dropout(drop)
        self.fc: nn.Module = nn.Identity()
        self.reset(num_classes)

    def reset(self, num_classes: int) -> None:
        width = self.in_features if self.hidden is None else self.hidden[0].out_features
        self.fc = nn.Linear(width, num_classes) if num_classes > 0 else nn.Identity()

    def forward(self, x: Tensor, pre_logits: bool = False) -> Tensor:
        x = x.mean(dim=tuple(range(2, x.dim()))) if x.dim() > 2 else x  # (N, C)
        x = self.norm(x)
        if self.hidden is not None:
            x = self.hidden(x)
        x = self.drop(x)
        return x if pre_logits else self.fc(x)


class ConvNet(nn.Module):
    """Base class of convzoo classifiers: ``stem`` → ``stages`` → ``head``.

    Subclasses build ``self.stem`` (a module), ``self.stages`` (an ``nn.ModuleList``, one entry
    per feature stage), ``self.head`` (with ``reset(num_classes)`` and ``forward(x, pre_logits)``,
    usually :class:`ClassifierHead`) and ``self.feature_info``; optionally ``self.final_norm``
    applied to the last stage output before the head.
    """

    name: str = "model"
    stem: nn.Module
    stages: nn.ModuleList
    head: nn.Module
    feature_info: list[FeatureInfo]

    def forward_stages(self, x: Tensor) -> list[Tensor]:
        x = self.stem(x)
        outputs = []
        for stage in self.stages:
            x = stage(x)
            outputs.append(x)
        return outputs

    def forward_features(self, x: Tensor) -> Tensor:
        x = self.forward_stages(x)[-1]
        # a registered submodule; no class-level default, which would hide it from attribute lookup
        final_norm = self._modules.get("final_norm")
        return x if final_norm is None else final_norm(x)

    def forward_head(self, x: Tensor, pre_logits: bool = False) -> Tensor:
        return self.head(x, pre_logits=pre_logits)

    def reset_classifier(self, num_classes: int) -> None:
        self.head.reset(check_int(num_classes, "num_classes", self.name, low=0))

    def forward(self, x: Tensor) -> Tensor:
        return self.forward_head(self.forward_features(x))


class FeatureExtractor(nn.Module):
    """A classifier without its head (and final norm): ``forward`` returns the list of stage outputs."""

    def __init__(self, model: ConvNet) -> None:
        super().__init__()
        model.head = nn.Identity()
        model.final_norm = None
        self.model = model
        self.name = model.name
        self.feature_info = list(model.feature_info)

    def forward(self, x: Tensor) -> list[Tensor]:
        return self.model.forward_stages(x)
