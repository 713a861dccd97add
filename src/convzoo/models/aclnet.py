"""AclNet (S21, Huang & Alvarado Leanos 2018, "AclNet: efficient end-to-end audio classification CNN").

Waveform ``(N, 1, T)`` → logits ``(N, classes)`` in two stages:

- **LLF** (low-level features, a learned filter bank): ``Conv1d(1, C1, 9, stride 2)`` → ``Conv1d(C1, C2, 5,
  stride 2)`` (each + BN + ReLU) → max-pool to one frame per 10 ms (pool ``sr/100/4``, 40 at 16 kHz):
  ``(N, C2, T/160)``, then read as a one-channel image ``(N, 1, C2, frames)``;
- **HLF** (high-level features, VGG-like): conv3 (3×3, 32α) → pool 2; then four pairs of 3×3 convs of 64α,
  128α, 256α, 512α, each pair followed by a 2×2 max-pool; conv4 … conv11 are depthwise-separable
  (``separable=True``, the paper's low-complexity setting) or standard; dropout; conv12 (1×1 to ``classes``)
  and a global average pool.

The registered ``aclnet`` is the configuration of the abstract: C1 = 16, C2 = 64, width α = 0.5, separable
convs — 155,248 conv/linear weights for 50 classes (the abstract: "only 155k parameters"; BN's affine parameters,
which the count leaves out, add 3,552). With ``frontend="stft"`` or ``"logmel"`` the LLF is replaced by that front
end and the HLF reads the spectrogram ``(N, 1, F, frames)``, so one network trains on either representation.

Departures: pooling uses ``ceil_mode`` so that short or odd-sized inputs never pool to zero; the paper's mixup
augmentation and 44.1 kHz ESC-50 setting are the trainer's and data's business, not the model's.
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import Tensor, nn

from convzoo.core.validate import check_choice, check_int, check_number
from convzoo.layers.audio_frontend import FRONTENDS, make_frontend
from convzoo.models._audio import conv_bn_relu, register_audio, separable_bn_relu

__all__ = ["AclNet", "AclNetConfig"]


@dataclass(frozen=True)
class AclNetConfig:
    classes: int = 50
    sample_rate: int = 16000
    frontend: str = "waveform"
    llf_channels: tuple[int, int] = (16, 64)
    width: float = 0.5
    separable: bool = True
    hlf_channels: tuple[int, ...] = (32, 64, 64, 128, 128, 256, 256, 512, 512)
    drop: float = 0.2


class AclNet(nn.Module):
    """AclNet: LLF filter bank (or a spectrogram front end) → VGG-like HLF → 1×1 conv → average pool."""

    def __init__(self, config: AclNetConfig) -> None:
        super().__init__()
        owner = "AclNet"
        self.config = config
        check_int(config.classes, "classes", owner)
        check_choice(config.frontend, FRONTENDS, "frontend", owner)
        check_number(config.width, "width", owner)
        c1, c2 = (check_int(c, "llf_channels", owner) for c in config.llf_channels)
        if config.frontend == "waveform":
            frame = check_int(config.sample_rate, "sample_rate", owner) // 100  # samples per 10 ms
            if frame % 4:
                raise ValueError(f"AclNet: sample_rate / 100 must be a multiple of 4, got {config.sample_rate}")
            self.frontend = make_frontend("waveform", config.sample_rate)
            self.llf = nn.Sequential(
                conv_bn_relu(1, 1, c1, 9, 2), conv_bn_relu(1, c1, c2, 5, 2), nn.MaxPool1d(frame // 4, ceil_mode=True)
            )
        else:
            self.frontend = make_frontend(config.frontend, config.sample_rate)
            self.llf = nn.BatchNorm2d(1)  # spectrogram in dB → roughly unit scale
        widths = [max(1, round(c * config.width)) for c in config.hlf_channels]
        if len(widths) != 9:
            raise ValueError(f"AclNet: hlf_channels must name 9 widths (conv3 … conv11), got {config.hlf_channels}")
        layers: list[nn.Module] = [conv_bn_relu(2, 1, widths[0], 3), nn.MaxPool2d(2, ceil_mode=True)]
        block = separable_bn_relu if config.separable else (lambda i, o: conv_bn_relu(2, i, o, 3))
        for i in range(1, 9, 2):  # conv4/5, conv6/7, conv8/9, conv10/11
            pair = [block(widths[i - 1], widths[i]), block(widths[i], widths[i + 1])]
            layers += [*pair, nn.MaxPool2d(2, ceil_mode=True)]
        self.hlf = nn.Sequential(*layers)
        self.drop = nn.Dropout(config.drop)
        self.classifier = nn.Conv2d(widths[-1], config.classes, 1)  # conv12

    def forward(self, x: Tensor) -> Tensor:
        x = self.frontend(x)  # (N, 1, T) or (N, 1, F, frames)
        x = self.llf(x)  # waveform: (N, C2, frames), read as an image below
        x = x.unsqueeze(1) if x.dim() == 3 else x  # (N, 1, C2, frames)
        x = self.classifier(self.drop(self.hlf(x)))  # (N, classes, h, w)
        return x.mean(dim=(2, 3))  # (N, classes)


register_audio(
    "aclnet",
    AclNet,
    AclNetConfig(),
    papers=("aclnet",),
    params=None,
    params_source="arXiv:1811.06669 abstract: 155k parameters (C1=16, C2=64, α=0.5, DS convs, 50 classes); that "
    "figure counts conv/linear weights only (155,248 here), BN affine adds 3,552, so the total is not compared",
    summary="AclNet: raw-waveform LLF filter bank + VGG-like HLF with depthwise-separable convs (155k weights)",
)
