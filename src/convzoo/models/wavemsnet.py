"""WaveMsNet (S62, Zhu et al. 2018, "Learning Environmental Sounds with Multi-scale Convolutional Neural
Network"): a multi-scale 1-D front end on the raw waveform and two-phase fusion with the log-mel spectrogram.

Waveform ``(N, 1, T)`` →

- **multi-scale front end**: three parallel branches with short, middle and long filters (kernels 11, 51, 101 at
  strides 1, 5, 10 — fine time resolution at one end, fine frequency resolution at the other), each
  ``Conv1d(1, c, k, s)`` → BN → ReLU → ``Conv1d(c, c, 3)`` → BN → ReLU → max-pool to one frame per 10 ms:
  ``(N, c, frames)`` each, stacked on the channel axis into a feature image ``(N, 1, 3c, frames)``;
- **phase 1** (``phase="wave"``): a back end of 2-D conv blocks over that image → logits;
- **phase 2** (``phase="fused"``): the waveform image and a log-mel spectrogram with ``3c`` mel bins stacked as
  two channels ``(N, 2, 3c, frames)``, read by the back end. :meth:`WaveMsNet.from_phase1` copies a trained
  phase-1 front end into a phase-2 net (the two-phase method: learn the waveform filters first, then fuse).

Back end: four blocks of two 3×3 conv-BN-ReLU (32, 64, 128, 256 channels) with 2×2 max pools, global average,
a linear classifier. Departures: the paper's back end is the VGG-like stack of its Table 1 with fully connected
layers; here a global-average head, and 10-ms frames for every branch.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, replace

import torch
from torch import Tensor, nn

from convzoo.core.validate import check_choice, check_int
from convzoo.layers.audio_frontend import LogMel
from convzoo.models._audio import conv_bn_relu, register_audio

__all__ = ["WaveMsNet", "WaveMsNetConfig"]


@dataclass(frozen=True)
class WaveMsNetConfig:
    classes: int = 50
    sample_rate: int = 16000
    phase: str = "fused"
    branch_channels: int = 32
    kernels: tuple[int, ...] = (11, 51, 101)
    strides: tuple[int, ...] = (1, 5, 10)
    widths: tuple[int, ...] = (32, 64, 128, 256)


class WaveMsNet(nn.Module):
    """Multi-scale waveform front end (+ log-mel in phase 2) → 2-D conv back end → logits."""

    def __init__(self, config: WaveMsNetConfig) -> None:
        super().__init__()
        owner = "WaveMsNet"
        self.config = config
        check_choice(config.phase, ("wave", "fused"), "phase", owner)
        c = check_int(config.branch_channels, "branch_channels", owner)
        hop = check_int(config.sample_rate, "sample_rate", owner) // 100
        if len(config.kernels) != len(config.strides):
            raise ValueError(f"WaveMsNet: kernels and strides differ in length: {config.kernels}, {config.strides}")
        self.branches = nn.ModuleList()
        for k, s in zip(config.kernels, config.strides, strict=True):
            if hop % s:
                raise ValueError(f"WaveMsNet: stride {s} does not divide the 10-ms hop of {hop} samples")
            self.branches.append(
                nn.Sequential(
                    conv_bn_relu(1, 1, c, k, s, padding=k // 2),
                    conv_bn_relu(1, c, c, 3),
                    nn.MaxPool1d(hop // s, ceil_mode=True),
                )
            )
        rows = c * len(config.kernels)
        self.logmel = LogMel(config.sample_rate, n_mels=rows) if config.phase == "fused" else None
        self.mel_norm = nn.BatchNorm2d(1) if config.phase == "fused" else None
        layers: list[nn.Module] = []
        cin = 2 if config.phase == "fused" else 1
        for width in config.widths:
            layers += [
                conv_bn_relu(2, cin, width, 3),
                conv_bn_relu(2, width, width, 3),
                nn.MaxPool2d(2, ceil_mode=True),
            ]
            cin = width
        self.backend = nn.Sequential(*layers)
        self.classifier = nn.Linear(cin, check_int(config.classes, "classes", owner))

    @classmethod
    def from_phase1(cls, phase1: WaveMsNet) -> WaveMsNet:
        """Phase 2 of the two-phase method: a fused net whose multi-scale front end is ``phase1``'s (copied)."""
        if phase1.config.phase != "wave":
            raise ValueError(f"WaveMsNet.from_phase1: expected a phase='wave' net, got phase={phase1.config.phase!r}")
        fused = cls(replace(phase1.config, phase="fused"))
        fused.branches = copy.deepcopy(phase1.branches)
        return fused

    def waveform_image(self, x: Tensor) -> Tensor:
        """The multi-scale features ``(N, 1, 3c, frames)`` of waveforms ``(N, 1, T)``."""
        outs = [branch(x) for branch in self.branches]  # each (N, c, ~T/hop)
        frames = min(o.shape[-1] for o in outs)
        return torch.cat([o[..., :frames] for o in outs], dim=1).unsqueeze(1)  # (N, 1, 3c, frames)

    def forward(self, x: Tensor) -> Tensor:
        image = self.waveform_image(x)  # (N, 1, 3c, frames)
        if self.logmel is not None:
            mel = self.mel_norm(self.logmel(x))  # (N, 1, 3c, 1 + T // hop)
            frames = min(mel.shape[-1], image.shape[-1])
            image = torch.cat([image[..., :frames], mel[..., :frames]], dim=1)  # (N, 2, 3c, frames)
        x = self.backend(image).mean(dim=(2, 3))  # (N, widths[-1])
        return self.classifier(x)


register_audio(
    "wavemsnet",
    WaveMsNet,
    WaveMsNetConfig(),
    papers=("wavemsnet",),
    params=None,
    params_source="no published count in the paper",
    summary="WaveMsNet: multi-scale (11/51/101) raw-waveform front end fused with log-mel in two phases",
)
