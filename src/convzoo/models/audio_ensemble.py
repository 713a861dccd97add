"""The multi-representation CNN ensemble (S57, Nanni et al. 2021, "An Ensemble of Convolutional Neural Networks
for Audio Classification"): members that read the same clip through different representations, fused by the
sum rule (the average of their class probabilities).

Waveform ``(N, 1, T)`` → each member ``m`` (a :class:`~convzoo.models.aclnet.AclNet` on its own front end:
``waveform``, ``stft`` or ``logmel``) → ``p_m = softmax(logits_m)`` → the ensemble's output
``log(mean_m p_m)`` ``(N, classes)``, log-probabilities, so that cross-entropy and argmax apply unchanged
(``argmax`` of the log of the mean is the sum rule's decision).

Departure: the paper fine-tunes ImageNet CNNs (and augments) per representation and fuses them afterwards; here
the members are small AclNets trained jointly through the fused output (or separately and fused with
:meth:`AudioEnsemble.from_members`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from convzoo.core.validate import check_choice, check_int
from convzoo.layers.audio_frontend import FRONTENDS
from convzoo.models._audio import register_audio
from convzoo.models.aclnet import AclNet, AclNetConfig

__all__ = ["AudioEnsemble", "AudioEnsembleConfig"]


@dataclass(frozen=True)
class AudioEnsembleConfig:
    classes: int = 10
    sample_rate: int = 16000
    representations: tuple[str, ...] = ("waveform", "stft", "logmel")
    width: float = 0.25


class AudioEnsemble(nn.Module):
    """Members on several representations, fused by averaging their probabilities."""

    def __init__(self, config: AudioEnsembleConfig) -> None:
        super().__init__()
        self.config = config
        check_int(config.classes, "classes", "AudioEnsemble")
        if not config.representations:
            raise ValueError("AudioEnsemble: representations must name at least one front end, got ()")
        for name in config.representations:
            check_choice(name, FRONTENDS, "representations", "AudioEnsemble")
        self.members = nn.ModuleList(
            AclNet(AclNetConfig(config.classes, config.sample_rate, name, width=config.width))
            for name in config.representations
        )

    @classmethod
    def from_members(cls, members: list[nn.Module], config: AudioEnsembleConfig) -> AudioEnsemble:
        """An ensemble of already trained ``members`` (any modules from waveforms to logits)."""
        ensemble = cls.__new__(cls)
        nn.Module.__init__(ensemble)
        ensemble.config = config
        ensemble.members = nn.ModuleList(members)
        return ensemble

    def member_logits(self, x: Tensor) -> Tensor:
        return torch.stack([member(x) for member in self.members])  # (M, N, classes)

    def forward(self, x: Tensor) -> Tensor:
        logits = self.member_logits(x)  # (M, N, classes)
        return torch.logsumexp(logits.log_softmax(-1), dim=0) - math.log(len(self.members))  # log mean p


register_audio(
    "audio_ensemble",
    AudioEnsemble,
    AudioEnsembleConfig(),
    papers=("audio-ensemble",),
    params=None,
    params_source="no published count: the paper's members are ImageNet CNNs; here three AclNets (α=0.25)",
    summary="sum-rule ensemble of AclNets on waveform, STFT and log-mel representations",
)
