"""ConvMath (S58): image-to-LaTeX with a CNN image encoder and a causal ConvS2S decoder attending in every layer."""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from convzoo.core.validate import check_int
from convzoo.registry import MODELS, ModelInfo

__all__ = ["ConvMath", "ConvMathConfig", "ConvMathState", "DecoderLayer", "ImageEncoder", "convmath"]


@dataclass(frozen=True)
class ConvMathConfig:
    """ConvMath hyper-parameters.

    The paper's layer sizes were not available to check, so the decoder takes ConvS2S's defaults (fairseq
    ``fconv`` ``base_architecture``, Gehring et al. 2017): embedding 512, 20 layers of 512 channels with kernel 3,
    output embedding 256, target positions up to 1024. ``decoder_layers`` lists ``(channels, kernel)`` per layer.
    ``vocab_size`` is the LaTeX token vocabulary of the dataset (IM2LATEX-100K's depends on its normalisation).
    """

    vocab_size: int = 512
    in_chans: int = 1
    embed_dim: int = 512
    decoder_layers: tuple[tuple[int, int], ...] = ((512, 3),) * 20
    out_embed_dim: int = 256
    max_positions: int = 1024


def sinusoid_2d(channels: int, rows: int, cols: int, ref: Tensor) -> Tensor:
    """Fixed 2D position code ``(rows · cols, channels)``: the first half of the channels encode the row with
    Transformer sinusoids, the second half the column (row-major order of the cells)."""
    half = channels // 2
    freqs = torch.exp(-math.log(10000.0) * torch.arange(0, half, 2, device=ref.device) / half)  # (half / 2,)

    def code(n: int) -> Tensor:
        angle = torch.arange(n, device=ref.device)[:, None] * freqs  # (n, half / 2)
        return torch.cat([angle.sin(), angle.cos()], dim=-1)[:, :half]  # (n, half)

    row = code(rows)[:, None].expand(rows, cols, half)
    col = code(cols)[None].expand(rows, cols, half)
    pos = torch.cat([row, col], dim=-1).reshape(rows * cols, 2 * half)
    return F.pad(pos, (0, channels - 2 * half)).to(ref.dtype)  # (rows · cols, channels)


def _conv_bn(c_in: int, c_out: int, bn: bool) -> list[nn.Module]:
    layers: list[nn.Module] = [nn.Conv2d(c_in, c_out, 3, padding=1, bias=not bn)]
    return layers + ([nn.BatchNorm2d(c_out)] if bn else []) + [nn.ReLU(inplace=True)]


class ImageEncoder(nn.Module):
    """VGG-style CNN of im2markup (Deng et al. 2017), the usual IM2LATEX encoder, ``(N, C, H, W)`` → memory
    ``(N, S, embed_dim)``, ``S = ⌊H/8⌋ · ⌊W/8⌋``: conv64 · pool2 · conv128 · pool2 · conv256+BN · conv256 ·
    pool(2,1) · conv512+BN · pool(1,2) · conv512+BN (3×3 convs, ReLU), then a linear map of each cell to
    ``embed_dim`` plus a fixed 2D sinusoidal position code."""

    def __init__(self, in_chans: int, embed_dim: int) -> None:
        super().__init__()
        self.cnn = nn.Sequential(
            *_conv_bn(in_chans, 64, False),
            nn.MaxPool2d(2),
            *_conv_bn(64, 128, False),
            nn.MaxPool2d(2),
            *_conv_bn(128, 256, True),
            *_conv_bn(256, 256, False),
            nn.MaxPool2d((2, 1)),
            *_conv_bn(256, 512, True),
            nn.MaxPool2d((1, 2)),
            *_conv_bn(512, 512, True),
        )
        self.proj = nn.Linear(512, embed_dim)

    def forward(self, image: Tensor) -> Tensor:
        features = self.cnn(image)  # (N, 512, H/8, W/8)
        _, _, rows, cols = features.shape
        cells = self.proj(features.flatten(2).transpose(1, 2))  # (N, S, e)
        return cells + sinusoid_2d(cells.shape[-1], rows, cols, cells)


class DecoderLayer(nn.Module):
    """One ConvS2S decoder layer (Gehring et al. 2017, §3.2-3.3) with its own attention ("multi-layer attention").

    ``y = GLU(conv_k(x))`` over the left-padded input (causal); ``d = (W_d y + g) √½`` with ``g`` the target
    embedding; ``a = softmax(d · memoryᵀ)``; ``c = √S · a · memory``; ``y' = (W_c c + y) √½``; output
    ``(y' + residual) √½``, the residual projected where the width changes.
    """

    def __init__(self, c_in: int, c_out: int, kernel_size: int, embed_dim: int) -> None:
        super().__init__()
        self.kernel_size = kernel_size
        self.conv = nn.Conv1d(c_in, 2 * c_out, kernel_size)
        self.residual = nn.Linear(c_in, c_out) if c_in != c_out else None
        self.to_embed = nn.Linear(c_out, embed_dim)
        self.from_embed = nn.Linear(embed_dim, c_out)

    def _attend(self, y: Tensor, g: Tensor, memory: Tensor, residual: Tensor) -> Tensor:
        # y, residual (N, T, c_out); g (N, T, e); memory (N, S, e)
        d = (self.to_embed(y) + g) * math.sqrt(0.5)
        attn = (d @ memory.transpose(1, 2)).softmax(dim=-1)  # (N, T, S)
        context = attn @ memory * math.sqrt(memory.shape[1])  # (N, T, e)
        y = (self.from_embed(context) + y) * math.sqrt(0.5)
        res = residual if self.residual is None else self.residual(residual)
        return (y + res) * math.sqrt(0.5)

    def forward(self, x: Tensor, g: Tensor, memory: Tensor) -> Tensor:
        """``x`` ``(N, c_in, T)`` → ``(N, c_out, T)``."""
        y = F.glu(self.conv(F.pad(x, (self.kernel_size - 1, 0))), dim=1)  # (N, c_out, T)
        return self._attend(y.transpose(1, 2), g, memory, x.transpose(1, 2)).transpose(1, 2)

    def step(self, x_t: Tensor, g_t: Tensor, memory: Tensor, window: Tensor) -> tuple[Tensor, Tensor]:
        """One position: ``x_t`` ``(N, c_in)`` with the last ``k - 1`` inputs in ``window`` ``(N, c_in, k - 1)``."""
        window = torch.cat([window, x_t[..., None]], dim=-1)  # (N, c_in, k)
        y = F.glu(self.conv(window)[..., 0], dim=1)  # (N, c_out)
        out = self._attend(y[:, None], g_t[:, None], memory, x_t[:, None])[:, 0]
        return out, window[..., 1:]


@dataclass
class ConvMathState:
    """Incremental decoding state: the encoder memory, the next position and each layer's past inputs."""

    memory: Tensor
    position: int
    windows: list[Tensor]


class ConvMath(nn.Module):
    """S58 ConvMath: ``forward(image (N, C, H, W), target_in (N, T)) → logits (N, vocab_size, T)``.

    The image encoder (:class:`ImageEncoder`) gives a memory of ``S`` cells; the decoder embeds the previous
    tokens with learned positions (``g``), maps them to the first layer's width, runs the causal GLU convolution
    layers, each attending to the memory, then ``embed → out_embed → vocab`` linear maps. Logits at ``t`` depend
    on ``target_in[:t + 1]`` only. ``init_state(image)``/``step(token, state)`` decode incrementally, caching the
    last ``k - 1`` inputs of every layer, and give the teacher-forced logits; ``generate`` decodes greedily.
    Departures: the memory is one vector per cell used as key and value (ConvS2S adds the source embedding to
    the values; an image has no separate one), no weight normalisation or dropout.
    """

    def __init__(self, config: ConvMathConfig) -> None:
        super().__init__()
        for what in ("vocab_size", "in_chans", "embed_dim", "out_embed_dim", "max_positions"):
            check_int(getattr(config, what), what, "convmath")
        layers = tuple(tuple(layer) for layer in config.decoder_layers)
        if not layers or any(len(layer) != 2 or min(layer) < 1 for layer in layers):
            raise ValueError(
                f"convmath: decoder_layers must be a non-empty sequence of (channels, kernel) pairs, "
                f"got {config.decoder_layers!r}"
            )
        self.config = config
        self.encoder = ImageEncoder(config.in_chans, config.embed_dim)
        self.embed_tokens = nn.Embedding(config.vocab_size, config.embed_dim)
        self.embed_positions = nn.Embedding(config.max_positions, config.embed_dim)
        self.fc1 = nn.Linear(config.embed_dim, layers[0][0])
        widths = [layers[0][0]] + [c for c, _ in layers]
        self.layers = nn.ModuleList(DecoderLayer(widths[i], c, k, config.embed_dim) for i, (c, k) in enumerate(layers))
        self.fc2 = nn.Linear(widths[-1], config.out_embed_dim)
        self.fc3 = nn.Linear(config.out_embed_dim, config.vocab_size)

    def encode(self, image: Tensor) -> Tensor:
        """Image ``(N, in_chans, H, W)`` → memory ``(N, S, embed_dim)``."""
        if image.dim() != 4 or image.shape[1] != self.config.in_chans:
            raise ValueError(
                f"convmath: expected an image (N, {self.config.in_chans}, H, W), got shape {tuple(image.shape)}"
            )
        if image.shape[-2] < 8 or image.shape[-1] < 8:
            raise ValueError(
                f"convmath: the image must be at least 8×8 (the encoder pools by 8), got {tuple(image.shape)}"
            )
        return self.encoder(image)

    def _check_tokens(self, tokens: Tensor, rank: int, what: str) -> None:
        if tokens.dim() != rank or tokens.dtype != torch.long:
            shape = "(N, T)" if rank == 2 else "(N,)"
            raise ValueError(f"convmath: {what} must be {shape} int64 tokens, got {tuple(tokens.shape)} {tokens.dtype}")

    def _embed(self, tokens: Tensor, positions: Tensor) -> Tensor:
        if int(positions.max()) >= self.config.max_positions:
            raise ValueError(
                f"convmath: target length {int(positions.max()) + 1} exceeds max_positions={self.config.max_positions}"
            )
        return self.embed_tokens(tokens) + self.embed_positions(positions)

    def decode(self, memory: Tensor, target_in: Tensor) -> Tensor:
        """Teacher-forced logits ``(N, vocab_size, T)`` for the previous tokens ``target_in`` ``(N, T)``."""
        self._check_tokens(target_in, 2, "target_in")
        g = self._embed(target_in, torch.arange(target_in.shape[1], device=target_in.device))  # (N, T, e)
        x = self.fc1(g).transpose(1, 2)  # (N, c_0, T)
        for layer in self.layers:
            x = layer(x, g, memory)
        return self.fc3(self.fc2(x.transpose(1, 2))).transpose(1, 2)  # (N, vocab, T)

    def forward(self, image: Tensor, target_in: Tensor) -> Tensor:
        return self.decode(self.encode(image), target_in)

    def init_state(self, image: Tensor) -> ConvMathState:
        """Encode ``image`` once and start every layer with zero history (the offline left padding)."""
        memory = self.encode(image)
        windows = [
            memory.new_zeros(image.shape[0], layer.conv.in_channels, layer.kernel_size - 1) for layer in self.layers
        ]
        return ConvMathState(memory, 0, windows)

    def step(self, token_t: Tensor, state: ConvMathState) -> tuple[Tensor, ConvMathState]:
        """Logits ``(N, vocab_size)`` at the next position for the previous tokens ``token_t`` ``(N,)``."""
        self._check_tokens(token_t, 1, "token_t")
        position = torch.full_like(token_t, state.position)
        g_t = self._embed(token_t, position)  # (N, e)
        x = self.fc1(g_t)
        for i, layer in enumerate(self.layers):
            x, state.windows[i] = layer.step(x, g_t, state.memory, state.windows[i])
        state.position += 1
        return self.fc3(self.fc2(x)), state

    @torch.no_grad()
    def generate(self, image: Tensor, start: int, end: int | None = None, max_length: int = 64) -> Tensor:
        """Greedy decoding with cached decoder states: ``(N, steps)`` tokens after ``start``, stopping once every
        row has produced ``end`` (or after ``max_length``)."""
        state = self.init_state(image)
        token = torch.full((image.shape[0],), start, dtype=torch.long, device=state.memory.device)
        finished = torch.zeros_like(token, dtype=torch.bool)
        tokens = []
        for _ in range(min(max_length, self.config.max_positions)):
            logits, state = self.step(token, state)
            token = logits.argmax(dim=-1)
            tokens.append(token)
            if end is not None:
                finished |= token == end
                if finished.all():
                    break
        return torch.stack(tokens, dim=1)


def _builder(base: ConvMathConfig):
    def build(**overrides: Any) -> ConvMath:
        return ConvMath(replace(base, **overrides))

    build.__doc__ = ConvMath.__doc__
    return build


DEFAULT_CONFIG = ConvMathConfig()

convmath = MODELS.register(
    "convmath",
    kind="sequence",
    dims=(2,),
    papers=("convmath",),
    summary="S58 ConvMath: im2markup CNN encoder, 20-layer causal GLU conv decoder with attention in every layer",
    info=ModelInfo(family=ConvMath, config=DEFAULT_CONFIG, takes_op=False),
)(_builder(DEFAULT_CONFIG))
