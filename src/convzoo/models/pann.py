"""Log-mel CNNs of S24 (Pellegrini et al. 2023, "Adapting a ConvNeXt model to audio classification on AudioSet"):
the audio ConvNeXt and the PANN CNN14 baseline with its depthwise-separable variant.

Waveform ``(N, 1, T)`` → :class:`~convzoo.layers.audio_frontend.LogMel` ``(N, 1, mels, frames)`` → a BatchNorm
over the mel bins (PANN's ``bn0``) → a 2-D CNN over (mel, time) → logits ``(N, classes)``.

- ``convnext_audio_*``: convzoo's ConvNeXt (S? ``convnext``) with one input channel, reading the log-mel image;
  the paper's CNeXt-Tiny has 28.2 M parameters for AudioSet's 527 classes (= ConvNeXt-T, 1 input channel, 527
  classes: the registered ``convnext_audio_tiny``).
- ``pann_cnn14``: PANN's CNN14 (Kong et al. 2020, the baseline S24 compares with): six blocks of two 3×3
  conv-BN-ReLU (64 … 2048 channels), 2×2 average pools after the first five, mean over mels, max + mean over
  time, ``fc 2048 → 2048`` + ReLU, then the classifier — 80.8 M parameters for 527 classes (PANNs Table 2);
- ``pann_ds_cnn14``: the same with every 3×3 conv depthwise-separable (depthwise 3×3 → BN → ReLU → pointwise 1×1
  → BN → ReLU), the low-cost variant (no published count).

Departures: the front end is 16 kHz, 64 mels, 25 ms / 10 ms windows (the papers: 32 kHz, 64 mels for PANNs, and
the same for CNeXt); no SpecAugment or mixup in the model; dropout placements of CNN14 kept (0.2 after each block,
0.5 before the fc layers).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from convzoo.core.validate import check_int
from convzoo.layers.audio_frontend import LogMel
from convzoo.models._audio import conv_bn_relu, register_audio, separable_bn_relu
from convzoo.models.registration import create_model

__all__ = ["ConvNeXtAudio", "ConvNeXtAudioConfig", "PANN", "PANNConfig"]


@dataclass(frozen=True)
class ConvNeXtAudioConfig:
    classes: int = 527
    sample_rate: int = 16000
    n_mels: int = 64
    variant: str = "convnext_tiny"
    depths: tuple[int, ...] | None = None  # overrides of the ConvNeXt variant's config
    dims: tuple[int, ...] | None = None


class ConvNeXtAudio(nn.Module):
    """Log-mel → BN over mels → ConvNeXt (one input channel) → logits."""

    def __init__(self, config: ConvNeXtAudioConfig) -> None:
        super().__init__()
        self.config = config
        self.frontend = LogMel(config.sample_rate, n_mels=check_int(config.n_mels, "n_mels", "ConvNeXtAudio"))
        self.bn0 = nn.BatchNorm2d(config.n_mels)
        overrides = {k: v for k, v in (("depths", config.depths), ("dims", config.dims)) if v is not None}
        self.body = create_model(config.variant, num_classes=config.classes, in_chans=1, **overrides)

    def forward(self, x: Tensor) -> Tensor:
        x = self.frontend(x)  # (N, 1, mels, frames)
        x = self.bn0(x.transpose(1, 2)).transpose(1, 2)  # BN per mel bin
        return self.body(x)  # (N, classes)


@dataclass(frozen=True)
class PANNConfig:
    classes: int = 527
    sample_rate: int = 16000
    n_mels: int = 64
    widths: tuple[int, ...] = (64, 128, 256, 512, 1024, 2048)
    separable: bool = False
    embedding: int = 2048


class PANN(nn.Module):
    """PANN CNN14 (or its depthwise-separable variant) on log-mel: blocks of two 3×3 convs, avg pools, fc head."""

    def __init__(self, config: PANNConfig) -> None:
        super().__init__()
        self.config = config
        self.frontend = LogMel(config.sample_rate, n_mels=check_int(config.n_mels, "n_mels", "PANN"))
        self.bn0 = nn.BatchNorm2d(config.n_mels)
        blocks, cin = [], 1
        for i, width in enumerate(config.widths):
            check_int(width, "widths", "PANN")
            if config.separable and cin > 1:
                convs = [separable_bn_relu(cin, width), separable_bn_relu(width, width)]
            elif config.separable:  # one input channel: nothing to separate in the first conv
                convs = [conv_bn_relu(2, cin, width, 3), separable_bn_relu(width, width)]
            else:
                convs = [conv_bn_relu(2, cin, width, 3), conv_bn_relu(2, width, width, 3)]
            pool = nn.AvgPool2d(2, ceil_mode=True) if i < len(config.widths) - 1 else nn.Identity()
            blocks.append(nn.Sequential(*convs, pool, nn.Dropout(0.2)))
            cin = width
        self.blocks = nn.Sequential(*blocks)
        self.fc1 = nn.Linear(cin, check_int(config.embedding, "embedding", "PANN"))
        self.drop = nn.Dropout(0.5)
        self.fc = nn.Linear(config.embedding, check_int(config.classes, "classes", "PANN"))

    def forward(self, x: Tensor) -> Tensor:
        x = self.frontend(x)  # (N, 1, mels, frames)
        x = self.bn0(x.transpose(1, 2)).transpose(1, 2)
        x = self.blocks(x).mean(dim=2)  # (N, C, frames'): mean over mels
        x = x.amax(dim=2) + x.mean(dim=2)  # (N, C): max + mean over time
        x = torch.relu(self.fc1(self.drop(x)))
        return self.fc(self.drop(x))  # (N, classes)


register_audio(
    "convnext_audio_tiny",
    ConvNeXtAudio,
    ConvNeXtAudioConfig(),
    papers=("convnext-audio",),
    params=28_200_000,
    params_source="Pellegrini et al. 2023 (CNeXt-Tiny on AudioSet, 527 classes: 28.2M parameters)",
    summary="ConvNeXt-Tiny on log-mel spectrograms (one input channel), the audio CNeXt (28.2M params)",
)
register_audio(
    "convnext_audio_atto",
    ConvNeXtAudio,
    ConvNeXtAudioConfig(classes=10, depths=(2, 2, 6, 2), dims=(40, 80, 160, 320)),
    papers=("convnext-audio",),
    params=None,
    params_source="no published count: ConvNeXt-Atto widths (timm) for small data",
    summary="a ConvNeXt-Atto-width audio CNeXt on log-mel for small data",
)
register_audio(
    "pann_cnn14",
    PANN,
    PANNConfig(),
    papers=("convnext-audio",),
    params=80_800_000,
    params_source="Kong et al. 2020 (PANNs), Table 2: CNN14 80.8M parameters (527 classes)",
    summary="PANN CNN14 on log-mel, the baseline of the audio CNeXt (80.8M params)",
)
register_audio(
    "pann_ds_cnn14",
    PANN,
    PANNConfig(separable=True),
    papers=("convnext-audio",),
    params=None,
    params_source="no published count: CNN14 with depthwise-separable 3×3 convs",
    summary="PANN CNN14 with depthwise-separable convs on log-mel",
)
