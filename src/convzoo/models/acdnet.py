"""ACDNet (S44, Mohaimenuzzaman et al. 2023, "Environmental Sound Classification on the Edge: A Pipeline for Deep
Acoustic Networks on Extremely Resource-Constrained Devices").

Waveform ``(N, 1, T)`` → logits ``(N, classes)``:

- **SFEB** (spectral feature extraction): ``Conv2d(1, c1, (1, 9), stride (1, 2))`` → ``Conv2d(c1, c2, (1, 5),
  stride (1, 2))`` (no padding, each + BN + ReLU) → max-pool ``(1, sr/100/4)``, one frame per 10 ms:
  ``(N, c2, 1, frames)``, swapped to an image ``(N, 1, c2, frames)``;
- **TFEB** (temporal feature extraction, VGG-like): conv3 → pool; (conv4, conv5) → pool; (conv6, conv7) → pool;
  (conv8, conv9) → pool; (conv10, conv11) → pool (3×3, padding 1, BN + ReLU; each pool halves both axes while they
  are ≥ 2); dropout 0.2; conv12 (1×1 to ``classes``, BN, ReLU); an average pool over what is left; a linear layer
  ``classes → classes``.

``channels`` are the widths of conv1 … conv11: ACDNet's ``(8, 64, 32, 64, 64, 128, 128, 256, 256, 512, 512)``
(4.74 M parameters for ESC-50: 50 classes, 20 kHz, 30,225-sample inputs — the paper's Table 3 and the official
``ACDNetV2``); Micro-ACDNet, the pipeline's output, keeps ``(7, 20, 10, 14, 22, 31, 35, 41, 51, 67, 69)`` (Table 11:
0.131 M parameters). :mod:`convzoo.deploy.acdnet_pipeline` prunes an ACDNet to such a configuration.

Departure: the pool sizes come from the frame count after the SFEB (the official code derives the same sizes from
the nominal clip length); the model returns logits (the official ``forward`` ends in a softmax).
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import Tensor, nn

from convzoo.core.validate import check_int
from convzoo.models._audio import register_audio

__all__ = ["ACDNet", "ACDNetConfig", "ACDNET_CHANNELS", "MICRO_ACDNET_CHANNELS"]

ACDNET_CHANNELS = (8, 64, 32, 64, 64, 128, 128, 256, 256, 512, 512)
MICRO_ACDNET_CHANNELS = (7, 20, 10, 14, 22, 31, 35, 41, 51, 67, 69)


@dataclass(frozen=True)
class ACDNetConfig:
    classes: int = 50
    sample_rate: int = 20000
    samples: int = 30225
    channels: tuple[int, ...] = ACDNET_CHANNELS
    drop: float = 0.2


def _pools(length: int) -> list[int]:
    """Five halvings while ``length`` ≥ 2, then what is left (the final average pool)."""
    sizes = []
    for _ in range(5):
        sizes.append(2 if length >= 2 else 1)
        length //= sizes[-1]
    return [*sizes, length]


def _block(cin: int, cout: int, kernel: tuple[int, int], stride: tuple[int, int] = (1, 1), padding: int = 0):
    return [nn.Conv2d(cin, cout, kernel, stride, padding, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True)]


class ACDNet(nn.Module):
    """ACDNet: SFEB (learned filter bank) → TFEB (VGG-like over filters × frames) → 1×1 conv → average → linear."""

    def __init__(self, config: ACDNetConfig) -> None:
        super().__init__()
        owner = "ACDNet"
        self.config = config
        classes = check_int(config.classes, "classes", owner)
        samples = check_int(config.samples, "samples", owner, low=100)
        frame = check_int(config.sample_rate, "sample_rate", owner) // 100
        if len(config.channels) != 11:
            raise ValueError(f"ACDNet: channels must give the 11 widths of conv1 … conv11, got {config.channels!r}")
        c = [check_int(w, "channels", owner) for w in config.channels]
        if frame % 4:
            raise ValueError(f"ACDNet: sample_rate / 100 must be a multiple of 4, got {config.sample_rate}")
        self.sfeb = nn.Sequential(
            *_block(1, c[0], (1, 9), (1, 2)), *_block(c[0], c[1], (1, 5), (1, 2)), nn.MaxPool2d((1, frame // 4))
        )
        frames = (((samples - 9) // 2 + 1 - 5) // 2 + 1) // (frame // 4)
        if frames < 1:
            raise ValueError(f"ACDNet: {samples} samples at {config.sample_rate} Hz make no 10-ms frame")
        heights, widths = _pools(c[1]), _pools(frames)
        layers: list[nn.Module] = _block(1, c[2], (3, 3), padding=1)
        pairs = [(c[2], c[3], c[4]), (c[4], c[5], c[6]), (c[6], c[7], c[8]), (c[8], c[9], c[10])]
        for i in range(5):
            if i:
                cin, mid, cout = pairs[i - 1]
                layers += _block(cin, mid, (3, 3), padding=1) + _block(mid, cout, (3, 3), padding=1)
            if heights[i] > 1 or widths[i] > 1:
                layers.append(nn.MaxPool2d((heights[i], widths[i])))
        layers += [nn.Dropout(config.drop), *_block(c[10], classes, (1, 1))]
        if heights[5] > 1 or widths[5] > 1:
            layers.append(nn.AvgPool2d((heights[5], widths[5])))
        layers += [nn.Flatten(), nn.Linear(classes, classes)]
        self.tfeb = nn.Sequential(*layers)

    def forward(self, x: Tensor) -> Tensor:  # no shape check: FX traces this for int8
        x = self.sfeb(x.unsqueeze(2))  # (N, 1, 1, T) → (N, c2, 1, frames)
        x = x.permute(0, 2, 1, 3)  # (N, 1, c2, frames)
        return self.tfeb(x)  # (N, classes)


register_audio(
    "acdnet",
    ACDNet,
    ACDNetConfig(),
    papers=("acdnet",),
    params=4_740_000,
    params_source="Mohaimenuzzaman et al. 2023, Table 3 (ACDNet, ESC-50: 4.74M parameters, 20 kHz, 30,225 samples)",
    input_size=(1, 30225),
    summary="ACDNet: raw-audio SFEB filter bank + VGG-like TFEB (4.74M params at ESC-50's 20 kHz inputs)",
)
register_audio(
    "micro_acdnet",
    ACDNet,
    ACDNetConfig(channels=MICRO_ACDNET_CHANNELS),
    papers=("acdnet",),
    params=None,
    params_source="Mohaimenuzzaman et al. 2023, Table 11: 0.131M parameters, three figures only (131,716 counted: "
    "within the figure's precision, which tests/models/test_acdnet.py checks, not within 0.5%)",
    input_size=(1, 30225),
    summary="Micro-ACDNet: the compression pipeline's pruned ACDNet (0.131M params, Table 11 widths)",
)
