"""TCNCA (S82): MEGA's gated single-head chunked attention with a dilated TCN in place of the EMA, O(L) in length."""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from convzoo.core.validate import check_int
from convzoo.ops.tcn import TCNState
from convzoo.registry import MODELS, ModelInfo

__all__ = [
    "DilatedDepthwiseTCN",
    "ChunkedGatedAttention",
    "TCNCA",
    "TCNCAConfig",
    "TCNCALayer",
    "TCNCAState",
    "chunked_attention",
    "tcnca_enwik8",
]


@dataclass(frozen=True)
class TCNCAConfig:
    """TCNCA hyper-parameters (``dim`` d, ``hidden`` the value width, ``z_dim`` the query/key width).

    The registered EnWik8 configuration takes MEGA's ``mega_lm_enwik8_base`` (facebookresearch/mega
    ``fairseq/models/mega_lm.py`` and ``examples/mega/README.lm.md``): 12 layers, d = 512, value and FFN width 1024,
    z = 128, chunk 2048, SiLU, pre-norm LayerNorm, a final LayerNorm without affine, tied input/output embeddings.
    TCNCA keeps MEGA's layer and replaces only the EMA; the TCN sizes (kernel 3, dilations ``4^level`` over 5
    levels, one block per level: receptive field 683) are this library's choice, since the paper's TCN settings
    were not available to check. ``vocab_size`` 256 reads bytes.
    """

    vocab_size: int = 256
    dim: int = 512
    hidden: int = 1024
    z_dim: int = 128
    ffn: int = 1024
    layers: int = 12
    chunk_size: int = 2048
    kernel_size: int = 3
    dilation_base: int = 4
    levels: int = 5
    blocks_per_level: int = 1
    causal: bool = True


def chunked_attention(
    q: Tensor, k: Tensor, v: Tensor, chunk_size: int, bias: Tensor | None = None, causal: bool = True
) -> Tensor:
    """Softmax attention restricted to fixed-size chunks: token ``i`` attends to tokens ``j`` of its own chunk
    (``j <= i`` too when ``causal``), ``softmax(q_i·k_j / sqrt(z) + bias[i mod C, j mod C])``.

    ``q``, ``k`` are ``(N, L, z)``, ``v`` is ``(N, L, h)``, ``bias`` is ``(C, C)`` with ``C = min(chunk_size, L)``
    (or ``None``). The sequence is zero-padded to a multiple of ``C`` and the padded keys are masked, so the result
    is that of a block-diagonal masked full attention. Cost ``O(L · C)``: linear in ``L`` for a fixed chunk.
    Returns ``(N, L, h)``.
    """
    batch, length, z_dim = q.shape
    chunk = min(chunk_size, length)
    chunks = -(-length // chunk)
    pad = chunks * chunk - length
    q, k, v = (F.pad(t, (0, 0, 0, pad)) for t in (q, k, v))  # (N, K·C, ·)
    q = q.view(batch, chunks, chunk, z_dim)  # (N, K, C, z)
    k = k.view(batch, chunks, chunk, z_dim)  # (N, K, C, z)
    v = v.view(batch, chunks, chunk, v.shape[-1])  # (N, K, C, h)
    scores = q @ k.transpose(-1, -2) / math.sqrt(z_dim)  # (N, K, C, C)
    if bias is not None:
        scores = scores + bias
    masked = torch.zeros(chunks, chunk, chunk, dtype=torch.bool, device=q.device)  # (K, C, C): True is hidden
    if causal:
        masked |= torch.ones(chunk, chunk, dtype=torch.bool, device=q.device).triu(1)
    if pad:
        masked[-1, :, chunk - pad :] = True
    scores = scores.masked_fill(masked, float("-inf"))
    out = scores.softmax(dim=-1) @ v  # (N, K, C, h)
    return out.reshape(batch, chunks * chunk, -1)[:, :length]  # (N, L, h)


class DilatedDepthwiseTCN(nn.Module):
    """The TCN that stands where MEGA's EMA stood: ``silu(TCN(x) + ω ⊙ x)`` on ``(N, d, L)``.

    ``levels`` levels of ``blocks_per_level`` residual blocks ``h ← h + GELU(dwconv_{k, d_l}(h))``, a depthwise
    convolution (as the EMA is per channel) of kernel ``k`` and dilation ``d_l = base^l``; causal blocks pad
    ``(k - 1) d_l`` on the left only, otherwise the padding is centred. Receptive field ``1 + (k - 1) B Σ_l base^l``.
    The block form (residual, GELU) is an assumption; ``ω`` and the closing SiLU are MEGA's EMA output form.
    Each position costs O(blocks · k · d): O(L) in all.
    """

    def __init__(
        self, dim: int, kernel_size: int, dilation_base: int, levels: int, blocks_per_level: int, causal: bool
    ) -> None:
        super().__init__()
        self.causal = causal
        self.dilations = [dilation_base**level for level in range(levels) for _ in range(blocks_per_level)]
        self.kernel_size = kernel_size
        self.convs = nn.ModuleList(
            nn.Conv1d(dim, dim, kernel_size, dilation=d, groups=dim) for d in self.dilations
        )  # weight (d, 1, k) each
        self.omega = nn.Parameter(torch.empty(dim).normal_(0.0, 1.0))

    @property
    def receptive_field(self) -> int:
        return 1 + (self.kernel_size - 1) * sum(self.dilations)

    def forward(self, x: Tensor) -> Tensor:
        h = x
        for conv in self.convs:
            span = (self.kernel_size - 1) * conv.dilation[0]
            pad = (span, 0) if self.causal else (span // 2, span - span // 2)
            h = h + F.gelu(conv(F.pad(h, pad)))  # (N, d, L)
        return F.silu(h + self.omega[:, None] * x)

    def init_state(self, batch: int) -> TCNState:
        """Zero history (the offline left padding) for ``batch`` streams: one ``(N, d, span)`` window per block."""
        ref = self.omega
        spans = [(self.kernel_size - 1) * d for d in self.dilations]
        return TCNState(0, [ref.new_zeros(batch, ref.shape[0], span) for span in spans])

    def step(self, x_t: Tensor, state: TCNState) -> Tensor:
        """Output at the next position for ``x_t`` ``(N, d)`` (causal only); updates ``state`` in place."""
        h = x_t
        for b, conv in enumerate(self.convs):
            window = torch.cat([state.buffers[b], h[..., None]], dim=-1)  # (N, d, span + 1)
            state.buffers[b] = window[..., 1:]
            h = h + F.gelu(conv(window)[..., 0])  # (N, d)
        state.position += 1
        return F.silu(h + self.omega * x_t)


class ChunkedGatedAttention(nn.Module):
    """MEGA's moving-average gated attention (Ma et al. 2022) with the TCN as the "moving average"; the equations
    follow facebookresearch/mega ``fairseq/modules/moving_average_gated_attention.py``.

    On ``x`` ``(N, L, d)``, after a pre-norm LayerNorm ``x̂``: ``v = silu(W_v x̂)``, ``x' = TCN(x̂)``,
    ``[u, z, r, ĥ] = [σ, silu, silu, id](W_m x' + b)``, ``q = γ_q ⊙ z + β_q``, ``k = γ_k ⊙ z + β_k``,
    ``a = chunked_attention(q, k, v) ⊙ r``, ``h = silu(ĥ + W_h a)``, output ``x + u ⊙ (h - x)``. The attention
    adds MEGA's simple relative position bias (one learned scalar per offset within a chunk).
    """

    def __init__(self, config: TCNCAConfig) -> None:
        super().__init__()
        d, h, z = config.dim, config.hidden, config.z_dim
        self.config = config
        self.norm = nn.LayerNorm(d)
        self.tcn = DilatedDepthwiseTCN(
            d, config.kernel_size, config.dilation_base, config.levels, config.blocks_per_level, config.causal
        )
        self.v_proj = nn.Linear(d, h)
        self.mx_proj = nn.Linear(d, d + z + h + d)
        self.h_proj = nn.Linear(h, d)
        self.gamma = nn.Parameter(torch.empty(2, z).normal_(0.0, 0.02))
        self.beta = nn.Parameter(torch.zeros(2, z))
        self.rel_pos = nn.Parameter(torch.empty(2 * config.chunk_size - 1).normal_(0.0, 0.02))
        for linear in (self.v_proj, self.mx_proj, self.h_proj):
            nn.init.normal_(linear.weight, std=0.02)
            nn.init.zeros_(linear.bias)

    def position_bias(self, chunk: int) -> Tensor:
        """``(C, C)``: ``bias[i, j] = w[C_max - 1 + j - i]``, the learned scalar of the offset ``j - i``."""
        offsets = torch.arange(chunk, device=self.rel_pos.device)
        return self.rel_pos[self.config.chunk_size - 1 + offsets[None, :] - offsets[:, None]]

    def _gates(self, normed: Tensor, moved: Tensor) -> tuple[Tensor, ...]:
        c = self.config
        u, zr, h_hat = self.mx_proj(moved).split([c.dim, c.z_dim + c.hidden, c.dim], dim=-1)
        z, r = F.silu(zr).split([c.z_dim, c.hidden], dim=-1)
        qk = z[..., None, :] * self.gamma + self.beta  # (..., 2, z)
        return torch.sigmoid(u), r, h_hat, qk[..., 0, :], qk[..., 1, :], F.silu(self.v_proj(normed))

    def forward(self, x: Tensor) -> Tensor:
        normed = self.norm(x)  # (N, L, d)
        moved = self.tcn(normed.transpose(1, 2)).transpose(1, 2)  # (N, L, d)
        u, r, h_hat, q, k, v = self._gates(normed, moved)
        chunk = min(self.config.chunk_size, x.shape[1])
        attended = chunked_attention(q, k, v, self.config.chunk_size, self.position_bias(chunk), self.config.causal)
        h = F.silu(h_hat + self.h_proj(attended * r))
        return x + u * (h - x)

    def step(self, x_t: Tensor, state: TCNCAState) -> Tensor:
        """One position ``x_t`` ``(N, d)``: the TCN steps, and the query attends to the keys cached in its chunk."""
        chunk_size = self.config.chunk_size
        index = state.tcn.position % chunk_size
        if index == 0:
            state.keys, state.values = x_t.new_zeros(x_t.shape[0], 0, self.config.z_dim), None
        normed = self.norm(x_t)
        u, r, h_hat, q, k, v = self._gates(normed, self.tcn.step(normed, state.tcn))
        state.keys = torch.cat([state.keys, k[:, None]], dim=1)  # (N, i + 1, z)
        state.values = v[:, None] if state.values is None else torch.cat([state.values, v[:, None]], dim=1)
        offsets = torch.arange(index + 1, device=x_t.device) - index  # j - i for j = 0 … i
        scores = (state.keys @ q[..., None])[..., 0] / math.sqrt(self.config.z_dim)  # (N, i + 1)
        scores = scores + self.rel_pos[chunk_size - 1 + offsets]
        attended = (scores.softmax(dim=-1)[:, None] @ state.values)[:, 0]  # (N, h)
        h = F.silu(h_hat + self.h_proj(attended * r))
        return x_t + u * (h - x_t)


class TCNCALayer(nn.Module):
    """One TCNCA layer on ``(N, d, L)``: chunked gated attention, then MEGA's normalized FFN
    ``x + W_2 silu(W_1 LN(x))``."""

    def __init__(self, config: TCNCAConfig) -> None:
        super().__init__()
        self.attention = ChunkedGatedAttention(config)
        self.ffn_norm = nn.LayerNorm(config.dim)
        self.fc1 = nn.Linear(config.dim, config.ffn)
        self.fc2 = nn.Linear(config.ffn, config.dim)
        for linear in (self.fc1, self.fc2):
            nn.init.normal_(linear.weight, std=0.02)
            nn.init.zeros_(linear.bias)

    def _ffn(self, x: Tensor) -> Tensor:
        return x + self.fc2(F.silu(self.fc1(self.ffn_norm(x))))

    def forward(self, x: Tensor) -> Tensor:
        return self._ffn(self.attention(x.transpose(1, 2))).transpose(1, 2)  # (N, d, L)

    def step(self, x_t: Tensor, state: TCNCAState) -> Tensor:
        return self._ffn(self.attention.step(x_t, state))


@dataclass
class TCNCAState:
    """Streaming state of one layer: the TCN's windows and the keys/values of the current chunk so far."""

    tcn: TCNState
    keys: Tensor | None = None
    values: Tensor | None = None


class TCNCA(nn.Module):
    """S82 TCNCA language model: ``forward(tokens (N, L)) → logits (N, vocab_size, L)``.

    Tokens are embedded (scaled by ``sqrt(d)``, as in MEGA), pass ``layers`` :class:`TCNCALayer` on ``(N, d, L)``
    and a LayerNorm without affine, and are read out by the tied embedding. With ``causal`` (the LM) logits at
    ``t`` depend on ``tokens[:t + 1]`` only, and ``init_state``/``step`` produce them one token at a time equal to
    the offline forward. Cost O(L · (C z + B k d)) per layer: linear in ``L`` at a fixed chunk ``C``.
    Departures from MEGA's layer: the simple relative position bias (the EnWik8 script uses a rotary one), no
    dropout, and the TCN block form of :class:`DilatedDepthwiseTCN`.
    """

    def __init__(self, config: TCNCAConfig) -> None:
        super().__init__()
        for what in ("vocab_size", "dim", "hidden", "z_dim", "ffn", "layers", "chunk_size", "kernel_size", "levels"):
            check_int(getattr(config, what), what, "tcnca")
        if config.dilation_base < 1 or config.blocks_per_level < 1:
            raise ValueError(
                f"tcnca: dilation_base and blocks_per_level must be ≥ 1, got "
                f"{config.dilation_base!r}, {config.blocks_per_level!r}"
            )
        self.config = config
        self.embed = nn.Embedding(config.vocab_size, config.dim)
        nn.init.normal_(self.embed.weight, std=config.dim**-0.5)
        self.layers = nn.ModuleList(TCNCALayer(config) for _ in range(config.layers))
        self.final_norm = nn.LayerNorm(config.dim, elementwise_affine=False)

    @property
    def receptive_field(self) -> int:
        """Of one layer's TCN."""
        return self.layers[0].attention.tcn.receptive_field

    def _check(self, tokens: Tensor, what: str = "tokens", rank: int = 2) -> None:
        if tokens.dim() != rank or tokens.dtype != torch.long:
            shape = "(N, L)" if rank == 2 else "(N,)"
            raise ValueError(f"tcnca: {what} must be {shape} int64 tokens, got {tuple(tokens.shape)} {tokens.dtype}")

    def _logits(self, h: Tensor) -> Tensor:
        return self.final_norm(h) @ self.embed.weight.t()  # (..., vocab)

    def forward(self, tokens: Tensor) -> Tensor:
        self._check(tokens)
        x = self.embed(tokens).transpose(1, 2) * math.sqrt(self.config.dim)  # (N, d, L)
        for layer in self.layers:
            x = layer(x)
        return self._logits(x.transpose(1, 2)).transpose(1, 2)  # (N, vocab, L)

    def init_state(self, batch: int) -> list[TCNCAState]:
        """Empty history for ``batch`` streams (causal models only)."""
        if not self.config.causal:
            raise ValueError("tcnca: init_state/step need a causal model (causal=True), got causal=False")
        return [TCNCAState(layer.attention.tcn.init_state(batch)) for layer in self.layers]

    def step(self, token_t: Tensor, state: list[TCNCAState]) -> tuple[Tensor, list[TCNCAState]]:
        """Logits ``(N, vocab)`` at the next position for tokens ``(N,)``; updates ``state`` in place."""
        self._check(token_t, "token_t", rank=1)
        if not self.config.causal:
            raise ValueError("tcnca: step needs a causal model (causal=True), got causal=False")
        x = self.embed(token_t) * math.sqrt(self.config.dim)  # (N, d)
        for layer, layer_state in zip(self.layers, state, strict=True):
            x = layer.step(x, layer_state)
        return self._logits(x), state


def _builder(base: TCNCAConfig):
    def build(**overrides: Any) -> TCNCA:
        return TCNCA(replace(base, **overrides))

    build.__doc__ = TCNCA.__doc__
    return build


ENWIK8_CONFIG = TCNCAConfig()

tcnca_enwik8 = MODELS.register(
    "tcnca_enwik8",
    kind="sequence",
    dims=(1,),
    papers=("tcnca",),
    summary="S82 TCNCA LM: 12 layers, d=512, chunked gated attention (chunk 2048) with a dilated TCN for the EMA",
    info=ModelInfo(family=TCNCA, config=ENWIK8_CONFIG, takes_op=False),
)(_builder(ENWIK8_CONFIG))
