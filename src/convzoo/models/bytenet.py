"""ByteNet (S105, Neural Machine Translation in Linear Time): dilated conv encoder, masked decoder stacked on top."""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from convzoo.layers.norm import LayerNormChannelsFirst
from convzoo.registry import MODELS, ModelInfo

__all__ = ["ByteNet", "ByteNetConfig", "ByteNetBlock", "bytenet", "bytenet_lm"]


@dataclass(frozen=True)
class ByteNetConfig:
    """ByteNet hyper-parameters. ``hidden`` is the paper's d: blocks carry 2d channels and convolve at d.

    Machine translation (S105 §6): 30 encoder and 30 decoder residual blocks, dilations 1, 2, 4, 8, 16 repeated
    (six sets of five), kernel 3, d = 800, dynamic unfolding ``|t̂| = a|s| + b`` with a = 1.20, b = 0 (En→De);
    bytes in and out (vocabulary 256). ``encoder_blocks=0`` gives the ByteNet decoder alone (a character LM).
    """

    source_vocab: int = 256
    target_vocab: int = 256
    hidden: int = 800
    encoder_blocks: int = 30
    decoder_blocks: int = 30
    kernel_size: int = 3
    dilations: tuple[int, ...] = (1, 2, 4, 8, 16)
    unfold_a: float = 1.20
    unfold_b: float = 0.0


def _norm(channels: int) -> LayerNormChannelsFirst:
    """LayerNorm over the channels of ``(N, C, L)``, eps as ``nn.LayerNorm``'s (1e-5)."""
    return LayerNormChannelsFirst(channels, eps=1e-5)


class ByteNetBlock(nn.Module):
    """Residual block (S105 Fig. 3, left): [LN → ReLU → 1×1 (2d → d)] → [LN → ReLU → 1×k dilated (d → d)]
    → [LN → ReLU → 1×1 (d → 2d)], added to the input. ``causal`` masks the 1×k conv (left padding only, the
    decoder); otherwise it is centred (the encoder)."""

    def __init__(self, hidden: int, kernel_size: int, dilation: int, causal: bool) -> None:
        super().__init__()
        self.causal = causal
        self.span = (kernel_size - 1) * dilation
        self.norm1, self.reduce = _norm(2 * hidden), nn.Conv1d(2 * hidden, hidden, 1)
        self.norm2, self.conv = _norm(hidden), nn.Conv1d(hidden, hidden, kernel_size, dilation=dilation)
        self.norm3, self.expand = _norm(hidden), nn.Conv1d(hidden, 2 * hidden, 1)

    def forward(self, x: Tensor) -> Tensor:
        h = self.reduce(F.relu(self.norm1(x)))
        pad = (self.span, 0) if self.causal else (self.span // 2, self.span - self.span // 2)
        h = self.conv(F.pad(F.relu(self.norm2(h)), pad))
        return x + self.expand(F.relu(self.norm3(h)))


def _stack(config: ByteNetConfig, blocks: int, causal: bool) -> nn.Sequential:
    dilations = config.dilations
    return nn.Sequential(
        *(ByteNetBlock(config.hidden, config.kernel_size, dilations[b % len(dilations)], causal) for b in range(blocks))
    )


class ByteNet(nn.Module):
    """S105 ByteNet: ``forward(source (N, S), target_in (N, T)) → logits (N, target_vocab, T)``.

    The encoder (unmasked dilated blocks) reads the source embedded and zero-padded to the unfolded length
    ``|t̂| = ceil(a |s| + b)``; the decoder (masked blocks) is stacked on it: at step ``t`` it reads the encoder's
    column ``t`` (zeros past ``|t̂|``, "dynamic unfolding") concatenated with the embedding of ``target_in[t]``
    (the previous target token under teacher forcing), so logits at ``t`` depend on ``target_in[:t + 1]`` only.
    Without an encoder (``encoder_blocks=0``) it is the ByteNet decoder: ``forward(None, target_in)``.
    Departures: the paper does not state how the two streams are joined; here the concatenation (4d channels)
    is projected back to 2d by a 1×1 conv. Dropout and the sub-batch normalisation of the LM are omitted.
    """

    def __init__(self, config: ByteNetConfig) -> None:
        super().__init__()
        self.config = config
        width = 2 * config.hidden
        self.target_embed = nn.Embedding(config.target_vocab, width)
        if config.encoder_blocks:
            self.source_embed = nn.Embedding(config.source_vocab, width)
            self.encoder = _stack(config, config.encoder_blocks, causal=False)
            self.join = nn.Conv1d(2 * width, width, 1)
        self.decoder = _stack(config, config.decoder_blocks, causal=True)
        self.head = nn.Sequential(_norm(width), nn.ReLU(), nn.Conv1d(width, config.target_vocab, 1))

    @property
    def has_encoder(self) -> bool:
        return self.config.encoder_blocks > 0

    def unfolded_length(self, source_length: int) -> int:
        """``|t̂| = ceil(a |s| + b)``: how far the encoder representation reaches."""
        return max(1, math.ceil(self.config.unfold_a * source_length + self.config.unfold_b))

    def encode(self, source: Tensor) -> Tensor:
        """Source tokens ``(N, S)`` → representation ``(N, 2d, |t̂|)``; the padding columns embed to zero."""
        embedded = self.source_embed(source).transpose(1, 2)  # (N, 2d, S)
        padded = F.pad(embedded, (0, self.unfolded_length(source.shape[1]) - source.shape[1]))  # (N, 2d, |t̂|)
        return self.encoder(padded)

    def decode(self, representation: Tensor | None, target_in: Tensor) -> Tensor:
        """Logits ``(N, target_vocab, T)`` for the decoder inputs ``(N, T)`` given the encoder representation."""
        h = self.target_embed(target_in).transpose(1, 2)  # (N, 2d, T)
        if representation is not None:
            steps = target_in.shape[1]
            columns = representation[..., :steps]
            columns = F.pad(columns, (0, steps - columns.shape[-1]))  # (N, 2d, T): zeros past |t̂|
            h = self.join(torch.cat([columns, h], dim=1))  # (N, 4d, T) → (N, 2d, T)
        return self.head(self.decoder(h))

    def _check(self, source: Tensor | None, target_in: Tensor) -> None:
        if self.has_encoder and source is None:
            raise ValueError("bytenet: this ByteNet has an encoder; pass source tokens (N, S)")
        if not self.has_encoder and source is not None:
            raise ValueError("bytenet: this ByteNet is a decoder only (encoder_blocks=0); pass source=None")
        for what, tokens in (("source", source), ("target_in", target_in)):
            if tokens is not None and (tokens.dim() != 2 or tokens.dtype != torch.long):
                raise ValueError(f"bytenet: {what} must be (N, length) int64 tokens, got {tuple(tokens.shape)}")

    def forward(self, source: Tensor | None, target_in: Tensor) -> Tensor:
        self._check(source, target_in)
        representation = self.encode(source) if self.has_encoder else None
        return self.decode(representation, target_in)

    @torch.no_grad()
    def generate(self, source: Tensor | None, start: int, end: int | None = None, max_length: int = 64) -> Tensor:
        """Greedy decoding by dynamic unfolding: one token per step until ``end`` (or ``max_length``) in every
        row. Returns the generated tokens ``(N, steps)`` (without ``start``)."""
        batch = 1 if source is None else source.shape[0]
        self._check(source, torch.zeros(batch, 1, dtype=torch.long))
        representation = self.encode(source) if self.has_encoder else None
        tokens = torch.full((batch, 1), start, dtype=torch.long, device=self.target_embed.weight.device)
        finished = torch.zeros(batch, dtype=torch.bool, device=tokens.device)
        for _ in range(max_length):
            step = self.decode(representation, tokens)[..., -1].argmax(dim=1)  # (N,)
            tokens = torch.cat([tokens, step[:, None]], dim=1)
            if end is not None:
                finished |= step == end
                if finished.all():
                    break
        return tokens[:, 1:]


def _builder(base: ByteNetConfig):
    def build(**overrides: Any) -> ByteNet:
        return ByteNet(replace(base, **overrides))

    return build


MT_CONFIG = ByteNetConfig()
LM_CONFIG = ByteNetConfig(hidden=512, encoder_blocks=0, decoder_blocks=30)

bytenet = MODELS.register(
    "bytenet",
    kind="sequence",
    dims=(1,),
    papers=("bytenet",),
    summary="S105 ByteNet: 30+30 dilated residual blocks, d=800, dynamic unfolding a=1.2 (byte-level MT)",
    info=ModelInfo(family=ByteNet, config=MT_CONFIG, takes_op=False),
)(_builder(MT_CONFIG))

bytenet_lm = MODELS.register(
    "bytenet_lm",
    kind="sequence",
    dims=(1,),
    papers=("bytenet",),
    summary="S105 ByteNet decoder: 30 masked dilated residual blocks, d=512 (character-level LM)",
    info=ModelInfo(family=ByteNet, config=LM_CONFIG, takes_op=False),
)(_builder(LM_CONFIG))
