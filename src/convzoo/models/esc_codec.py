"""ESC (S50, Gu & Chen 2024, "ESC: Efficient Speech Coding with Cross-Scale Residual Vector Quantized
Transformers"): a complex-STFT speech codec with Swin-Transformer encoder/decoder and cross-scale residual VQ.

Waveform ``(N, 1, T)`` at 16 kHz → **STFT** (``n_fft`` 382, Hann window of 320 = 20 ms, hop 80 = 5 ms, centred,
reflect-padded; the waveform is first zero-padded on the right so the frame count is a multiple of
``time_patch · overlap``) → real and imaginary parts as 2 channels ``(N, 2, F=192, frames)`` →
**patch embedding** (``Conv2d(2, dims[0], (3, 2), stride (3, 2))`` + LayerNorm: a ``(64, frames/2)`` grid of
tokens, channels last ``(N, H, W, C)``, H along frequency) → **encoder**: a stage of ``depth`` Swin blocks at
``dims[0]``, then five stages of ``depth`` Swin blocks followed by a patch merge along frequency only (pixel
unshuffle 2×1, LayerNorm, ``Linear(2C, C', bias=False)``): features at ``H`` = 64, 32, 16, 8, 4, 2 with widths
``dims`` = 45, 72, 96, 144, 192, 384. A Swin block is the pre-norm Transformer block with
:class:`~convzoo.layers.window_attention.ShiftedWindowAttention` (4×4 windows, the shift alternating 0 / 2,
``heads`` per stage) and an MLP of ratio 4.

**Cross-scale RVQ decoder** (coarse to fine): ``z = Q₀(e₅)``; for stage ``i`` = 0…4:
``z ← z + Q_{i+1}(e_{5−i} − z)`` when stream ``i + 1`` is transmitted (else ``z`` unchanged), then ``depth``
Swin blocks at the current width and a patch split (LayerNorm, ``Linear(C, 2C', bias=False)``, pixel shuffle
2×1); a final Swin stage at ``dims[0]``; **patch de-embedding** (``Conv2d(C, 6C, 5)``, pixel shuffle (3, 2),
``Conv2d(C, 2, 3)``) → complex spectrum → inverse STFT → ``(N, 1, T)``. Streams 0 and 1 both quantise at the
bottom scale (``e₅``; the second quantises what the first left), streams 2…5 at H = 4, 8, 16, 32.

Each ``Q`` is a product VQ (:class:`ProductVQ`): at every code step the features of ``overlap`` = 2 consecutive
token columns (all ``H`` rows, all ``C`` channels, ``overlap·H·C`` values) are split into ``groups`` = 3 parts,
each projected down to ``codebook_dim`` (``Linear``, no bias), quantised by a 1024-word codebook
(:class:`~convzoo.layers.residual_vq.ResidualVQ` with one stage, l2-normalised search, codebook learned by the
codebook loss, k-means initialised) and projected back up. Codes: ``groups`` 10-bit indices per stream at
16000 / (80 · 2 · 2) = 50 steps/s, 1.5 kbit/s per stream; :meth:`ESCCodec.bitrate` gives 1.5, 3, …, 9 kbit/s
for 1…6 streams. ``forward(x, stages=k)`` decodes from the first ``k`` streams and returns
``(reconstruction (N, 1, T), codes (k, N, groups, steps), VQ loss)``; the loss is Σ over scales of the group-mean
of ``0.25 · commitment + codebook loss``.

Registered: ``esc_codec`` (ESC-Base, depth 2: 8,386,373 parameters, released 8.39M) and ``esc_codec_large``
(ESC-Large, depth 4: 15,580,931, released 15.58M), codebook dimension 8 at every scale (the official ``ESC``
defaults; the codebook dimensions 32/32/16/12/8/6 of the official ``9kbps_esc_base.yaml`` would give 8.74M).

Departures: no training losses other than the VQ terms (the paper's multi-scale mel/STFT reconstruction losses,
the codebook-freezing pre-training stage and the optional adversarial training are not part of the model); the
right zero-padding of the waveform (the official code relies on clip lengths that fit); streams not transmitted
are skipped also in training (the official code quantises them and multiplies by zero); the shifted-window mask
is −∞ rather than −100.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from convzoo.core.validate import check_int
from convzoo.layers.attention import TransformerBlock
from convzoo.layers.residual_vq import ResidualVQ
from convzoo.layers.window_attention import ShiftedWindowAttention
from convzoo.models.registration import register_variant

__all__ = ["ESCCodec", "ESCCodecConfig", "ProductVQ", "SwinStage"]


@dataclass(frozen=True)
class ESCCodecConfig:
    sample_rate: int = 16000
    n_fft: int = 382  # 192 frequency bins
    win_length: int = 320  # 20 ms
    hop_length: int = 80  # 5 ms
    patch_size: tuple[int, int] = (3, 2)  # (frequency, time)
    dims: tuple[int, ...] = (45, 72, 96, 144, 192, 384)
    heads: tuple[int, ...] = (3, 6, 12, 24, 24)
    depth: int = 2
    window_size: int = 4
    mlp_ratio: float = 4.0
    overlap: int = 2
    groups: int = 3
    codebook_size: int = 1024
    codebook_dims: tuple[int, ...] = (8, 8, 8, 8, 8, 8)
    l2norm: bool = True


def _split(total: int, parts: int) -> list[int]:
    """``parts`` sizes summing to ``total``: equal, the last one taking the remainder."""
    sizes = [total // parts] * (parts - 1)
    return [*sizes, total - sum(sizes)]


class SwinStage(nn.Module):
    """``depth`` Swin blocks (shift 0, w/2, 0, …) at ``in_dim`` on ``(N, H, W, C)``, then ``scale``: ``"down"``
    (patch merge 2×1 along H: ``(N, ⌈H/2⌉, W, out_dim)``), ``"up"`` (patch split: ``(N, 2H, W, out_dim)``) or
    ``None`` (``in_dim == out_dim``, no rescaling)."""

    def __init__(
        self, in_dim: int, out_dim: int, heads: int, depth: int, window_size: int, mlp_ratio: float, scale: str | None
    ) -> None:
        super().__init__()
        self.blocks = nn.Sequential(
            *(
                TransformerBlock(
                    in_dim,
                    mlp_ratio=mlp_ratio,
                    norm_eps=1e-5,
                    attn=ShiftedWindowAttention(in_dim, heads, window_size, (i % 2) * (window_size // 2)),
                )
                for i in range(depth)
            )
        )
        if scale is None and in_dim != out_dim:
            raise ValueError(f"SwinStage: without rescaling in_dim must equal out_dim, got {in_dim} and {out_dim}")
        if scale not in (None, "down", "up"):
            raise ValueError(f"SwinStage: scale must be 'down', 'up' or None, got {scale!r}")
        self.scale = scale
        if scale == "down":
            self.norm, self.resample = nn.LayerNorm(2 * in_dim), nn.Linear(2 * in_dim, out_dim, bias=False)
        elif scale == "up":
            self.norm, self.resample = nn.LayerNorm(in_dim), nn.Linear(in_dim, 2 * out_dim, bias=False)

    def forward(self, x: Tensor) -> Tensor:
        x = self.blocks(x)  # (N, H, W, C)
        n, h, w, c = x.shape
        if self.scale == "down":
            x = F.pad(x, (0, 0, 0, 0, 0, h % 2))  # (N, H + H mod 2, W, C)
            x = x.view(n, -1, 2, w, c).permute(0, 1, 3, 2, 4).reshape(n, -1, w, 2 * c)  # (N, ⌈H/2⌉, W, 2C)
            return self.resample(self.norm(x))
        if self.scale == "up":
            x = self.resample(self.norm(x))  # (N, H, W, 2C')
            return x.view(n, h, w, 2, -1).permute(0, 1, 3, 2, 4).reshape(n, 2 * h, w, -1)  # (N, 2H, W, C')
        return x


class ProductVQ(nn.Module):
    """ESC's product VQ at one scale: tokens ``(N, H, W, C)`` → ``(quantised (N, H, W, C), codes (N, groups,
    W/overlap), loss)``; each of ``groups`` slices of the ``overlap·H·C`` vector is projected to ``codebook_dim``,
    quantised (one ResidualVQ stage, l2-normalised search, learned codebook) and projected back."""

    def __init__(
        self, dim: int, freq: int, overlap: int, groups: int, codebook_dim: int, codebook_size: int, l2norm: bool
    ) -> None:
        super().__init__()
        self.dim, self.freq, self.overlap = dim, freq, overlap
        self.sizes = _split(overlap * freq * dim, groups)
        self.down = nn.ModuleList(nn.Linear(s, codebook_dim, bias=False) for s in self.sizes)
        self.up = nn.ModuleList(nn.Linear(codebook_dim, s, bias=False) for s in self.sizes)
        self.vqs = nn.ModuleList(
            ResidualVQ(codebook_dim, 1, codebook_size, l2norm=l2norm, ema=False) for _ in self.sizes
        )

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        n, h, w, c = x.shape
        if (h, c) != (self.freq, self.dim) or w % self.overlap:
            raise ValueError(
                f"ProductVQ: expected (N, {self.freq}, W, {self.dim}) with W a multiple of {self.overlap}, "
                f"got {tuple(x.shape)}"
            )
        v = x.permute(0, 2, 3, 1).reshape(n, w // self.overlap, -1)  # (N, W/overlap, overlap·C·H)
        outs, codes, loss = [], [], x.new_zeros(())
        for part, down, vq, up in zip(v.split(self.sizes, -1), self.down, self.vqs, self.up, strict=True):
            q, code, part_loss = vq(down(part).transpose(1, 2))  # (N, d, W/overlap), (1, N, W/overlap), ()
            outs.append(up(q.transpose(1, 2)))  # (N, W/overlap, size)
            codes.append(code[0])
            loss = loss + part_loss / len(self.sizes)
        q = torch.cat(outs, -1).view(n, w, c, h).permute(0, 3, 1, 2)  # (N, H, W, C)
        return q, torch.stack(codes, 1), loss


class ESCCodec(nn.Module):
    """STFT → Swin encoder → cross-scale residual VQ decoder → inverse STFT; ``forward(x, stages=k)`` returns
    ``(reconstruction (N, 1, T), codes (k, N, groups, steps), VQ loss)``."""

    def __init__(self, config: ESCCodecConfig) -> None:
        super().__init__()
        self.config = config
        owner = "ESCCodec"
        dims, scales = list(config.dims), len(config.dims)
        for what, values in (("heads", config.heads), ("codebook_dims", config.codebook_dims)):
            if len(values) != scales - (what == "heads"):
                raise ValueError(
                    f"{owner}: {what} needs {scales - (what == 'heads')} entries for dims {config.dims}, got {values}"
                )
        [check_int(v, "dims", owner) for v in dims]
        self.streams = scales
        self.freq_patch, self.time_patch = config.patch_size
        self.bins = config.n_fft // 2 + 1
        if self.bins % self.freq_patch or (self.bins // self.freq_patch) % 2 ** (scales - 1):
            raise ValueError(
                f"{owner}: {self.bins} frequency bins must split into patches of {self.freq_patch} and halve "
                f"{scales - 1} times"
            )
        stage = {"window_size": config.window_size, "mlp_ratio": config.mlp_ratio, "depth": config.depth}
        self.embed = nn.Conv2d(2, dims[0], config.patch_size, config.patch_size)
        self.embed_norm = nn.LayerNorm(dims[0])
        self.pre = SwinStage(dims[0], dims[0], config.heads[0], scale=None, **stage)
        self.down = nn.ModuleList(
            SwinStage(dims[i], dims[i + 1], config.heads[i], scale="down", **stage) for i in range(scales - 1)
        )
        rdims, rheads = dims[::-1], config.heads[::-1]
        self.up = nn.ModuleList(
            SwinStage(rdims[i], rdims[i + 1], rheads[i], scale="up", **stage) for i in range(scales - 1)
        )
        self.post = SwinStage(dims[0], dims[0], rheads[-1], scale=None, **stage)
        self.deembed = nn.Conv2d(dims[0], dims[0] * self.freq_patch * self.time_patch, 5, padding=2)
        self.deembed_out = nn.Conv2d(dims[0], 2, 3, padding=1)
        h = self.bins // self.freq_patch
        self.quantizers = nn.ModuleList(
            ProductVQ(
                rdims[max(s - 1, 0)],  # streams 0 and 1 at the bottom scale, stream s ≥ 1 at decoder stage s − 1
                h // 2 ** (scales - max(s, 1)),
                config.overlap,
                config.groups,
                config.codebook_dims[s],
                config.codebook_size,
                config.l2norm,
            )
            for s in range(scales)
        )

    @property
    def steps_per_second(self) -> float:
        return self.config.sample_rate / (self.config.hop_length * self.time_patch * self.config.overlap)

    def bitrate(self, stages: int | None = None) -> float:
        """Bits per second of the codes of ``stages`` streams (default all): steps/s · stages · groups · log2(K)."""
        stages = self.streams if stages is None else check_int(stages, "stages", "ESCCodec", high=self.streams)
        return self.steps_per_second * stages * self.config.groups * math.log2(self.config.codebook_size)

    def _window(self, like: Tensor) -> Tensor:
        return torch.hann_window(self.config.win_length, dtype=like.dtype, device=like.device)  # periodic Hann

    def stft(self, x: Tensor) -> Tensor:
        """Waveform ``(N, T)`` → real/imaginary channels ``(N, 2, F, frames)``."""
        c = self.config
        spec = torch.stft(
            x, c.n_fft, c.hop_length, c.win_length, self._window(x), center=True, return_complex=True
        )  # (N, F, frames)
        return torch.view_as_real(spec).permute(0, 3, 1, 2)

    def istft(self, spec: Tensor, length: int) -> Tensor:
        """Real/imaginary channels ``(N, 2, F, frames)`` → waveform ``(N, length)``."""
        c = self.config
        complex_spec = torch.view_as_complex(spec.permute(0, 2, 3, 1).contiguous())  # (N, F, frames)
        return torch.istft(
            complex_spec, c.n_fft, c.hop_length, c.win_length, self._window(spec), center=True, length=length
        )

    def encode_features(self, x: Tensor) -> list[Tensor]:
        """Waveform ``(N, 1, T)`` (T already padded) → encoder features ``(N, H_s, W, dims[s])``, fine to coarse."""
        spec = self.stft(x[:, 0])  # (N, 2, F, frames)
        z = self.embed_norm(self.embed(spec).permute(0, 2, 3, 1))  # (N, F/3, frames/2, dims[0])
        features = [self.pre(z)]
        for stage in self.down:
            features.append(stage(features[-1]))
        return features

    def forward(self, x: Tensor, stages: int | None = None) -> tuple[Tensor, Tensor, Tensor]:
        stages = self.streams if stages is None else check_int(stages, "stages", "ESCCodec", high=self.streams)
        if x.dim() != 3 or x.shape[1] != 1:
            raise ValueError(f"ESCCodec: expected a waveform (N, 1, T), got {tuple(x.shape)}")
        t, hop, unit = x.shape[-1], self.config.hop_length, self.time_patch * self.config.overlap
        frames = -(-(t // hop + 1) // unit) * unit
        padded = max(t, (frames - 1) * hop)
        x = F.pad(x, (0, padded - t))  # (N, 1, T'): T' // hop + 1 frames, a multiple of time_patch · overlap
        features = self.encode_features(x)
        z, codes, loss = self.quantizers[0](features[-1])
        codes = [codes]
        for i, stage in enumerate(self.up):
            if i + 1 < stages:
                q, code, vq_loss = self.quantizers[i + 1](features[-1 - i] - z)  # residual at this scale
                z, loss = z + q, loss + vq_loss
                codes.append(code)
            z = stage(z)  # (N, 2H, W, C')
        z = self.post(z).permute(0, 3, 1, 2)  # (N, dims[0], F/3, frames/2)
        n, c, h, w = z.shape
        z = self.deembed(z).view(n, self.freq_patch, self.time_patch, c, h, w)  # (N, 3, 2, C, H, W)
        z = z.permute(0, 3, 4, 1, 5, 2).reshape(n, c, h * self.freq_patch, w * self.time_patch)  # (N, C, F, frames)
        y = self.istft(self.deembed_out(z), padded)[:, None, :t]  # (N, 1, T)
        return y, torch.stack(codes), loss  # (N, 1, T), (stages, N, groups, steps), ()


_SOURCE = "official repository yzGuu830/efficient-speech-codec README (checkpoint table)"

register_variant(
    "esc_codec",
    ESCCodec,
    ESCCodecConfig(),
    papers=("esc-codec",),
    params=8_390_000,
    params_source=f"ESC-Base 8.39M: {_SOURCE}",
    input_size=(1, 16000),
    summary="ESC-Base speech codec: STFT, Swin encoder/decoder, cross-scale residual VQ; 1.5-9 kbit/s in 6 streams",
    task="codec",
    takes_op=False,
    num_classes=0,
    test_size=3200,
)
register_variant(
    "esc_codec_large",
    ESCCodec,
    ESCCodecConfig(depth=4),
    papers=("esc-codec",),
    params=15_580_000,
    params_source=f"ESC-Large 15.58M: {_SOURCE}",
    input_size=(1, 16000),
    summary="ESC-Large speech codec: depth-4 Swin stages, cross-scale residual VQ; 1.5-9 kbit/s in 6 streams",
    task="codec",
    takes_op=False,
    num_classes=0,
    test_size=3200,
)
