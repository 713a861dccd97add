"""A neural speech codec after ESC (S50, Gu & Chen 2024, "ESC: Efficient Speech Coding with Cross-Scale Residual
Vector Quantized Transformers"): encoder, residual vector quantiser, decoder, on 16-kHz waveforms.

Waveform ``(N, 1, T)`` → **encoder** (a ``Conv1d(1, c, 7)`` stem, then one strided stage per ``strides`` entry:
``Conv1d(c_i, c_{i+1}, 2s, stride s)`` + ELU, and a ``Conv1d(·, dim, 3)`` projection) → latents ``(N, dim, T/hop)``
with ``hop = Π strides`` (320: 50 vectors per second) → :class:`~convzoo.layers.residual_vq.ResidualVQ`
(``stages`` codebooks of ``codebook_size``, k-means initialised, EMA updated) → **decoder** (the mirror, with
transposed convs) → waveform ``(N, 1, T)``. :meth:`ESCCodec.bitrate` states the rate: at the registered defaults
50 × 6 × log2(1024) = 3,000 bit/s; ``forward(x, stages=k)`` decodes from the first ``k`` codebooks only.

Departures: ESC places its quantisers *across the decoder's scales* (cross-scale RVQ, coarse to fine) with
Swin-style transformer blocks; here the RVQ sits at the one bottleneck scale and the encoder/decoder are
convolutional, so the "cross-scale" part of the title is not implemented; no adversarial or spectral losses (the
model returns the reconstruction and the commitment loss; training it is not part of the audio task).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from torch import Tensor, nn

from convzoo.core.validate import check_int
from convzoo.layers.residual_vq import ResidualVQ
from convzoo.models.registration import register_variant

__all__ = ["ESCCodec", "ESCCodecConfig"]


@dataclass(frozen=True)
class ESCCodecConfig:
    sample_rate: int = 16000
    channels: tuple[int, ...] = (32, 64, 128, 256)
    strides: tuple[int, ...] = (4, 8, 10)
    dim: int = 64
    stages: int = 6
    codebook_size: int = 1024


class ESCCodec(nn.Module):
    """Conv encoder → residual VQ → conv decoder; ``forward`` returns ``(reconstruction, codes, commitment loss)``."""

    def __init__(self, config: ESCCodecConfig) -> None:
        super().__init__()
        self.config = config
        if len(config.channels) != len(config.strides) + 1:
            raise ValueError(
                f"ESCCodec: channels must be one longer than strides, got {config.channels} and {config.strides}"
            )
        ch = [check_int(c, "channels", "ESCCodec") for c in config.channels]
        self.hop = math.prod(check_int(s, "strides", "ESCCodec") for s in config.strides)
        enc: list[nn.Module] = [nn.Conv1d(1, ch[0], 7, padding=3), nn.ELU()]
        dec: list[nn.Module] = [nn.Conv1d(config.dim, ch[-1], 3, padding=1), nn.ELU()]
        for i, s in enumerate(config.strides):
            enc += [nn.Conv1d(ch[i], ch[i + 1], 2 * s, s, padding=s // 2 + s % 2), nn.ELU()]
        for i, s in reversed(list(enumerate(config.strides))):
            dec += [
                nn.ConvTranspose1d(ch[i + 1], ch[i], 2 * s, s, padding=s // 2 + s % 2, output_padding=s % 2),
                nn.ELU(),
            ]
        enc.append(nn.Conv1d(ch[-1], config.dim, 3, padding=1))
        dec.append(nn.Conv1d(ch[0], 1, 7, padding=3))
        self.encoder, self.decoder = nn.Sequential(*enc), nn.Sequential(*dec)
        self.quantizer = ResidualVQ(config.dim, config.stages, config.codebook_size)

    def bitrate(self, stages: int | None = None) -> float:
        """Bits per second of the codes (``stages`` codebooks, default all)."""
        return self.quantizer.bitrate(self.config.sample_rate / self.hop, stages)

    def forward(self, x: Tensor, stages: int | None = None) -> tuple[Tensor, Tensor, Tensor]:
        t = x.shape[-1]
        latents = self.encoder(x)  # (N, dim, T / hop)
        quantised, codes, loss = self.quantizer(latents, stages)
        return self.decoder(quantised)[..., :t], codes, loss  # (N, 1, T), (stages, N, T / hop), ()


register_variant(
    "esc_codec",
    ESCCodec,
    ESCCodecConfig(),
    papers=("esc-codec",),
    params=None,
    params_source="no comparable published count (the paper's codec is a transformer; this one is convolutional)",
    input_size=(1, 16000),
    summary="speech codec: conv encoder, residual VQ (k-means init, EMA), conv decoder; 3 kbit/s at 6 stages",
    task="codec",
    takes_op=False,
    num_classes=0,
    test_size=3200,
)
