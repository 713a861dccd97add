"""Suite ``sequence``: FFT long convolution, dilated TCN and distilled recurrences (S84 Hyena distillery, S92 TCN).

Five comparisons, each A against B in one interleaved run:

- ``fft-L``: a ``long_conv`` filter (as long as the sequence, materialised once) applied by FFT (A) against the
  same filter applied directly by causal ``F.conv1d`` (B), at L = 1k ... 64k; they compute the same function.
- ``tcn-vs-fft``: the paper's uTCN-300 (4 blocks, kernel 13, dilation growth 10, width 32: receptive field
  13 333) (A) against an FFT ``long_conv`` with a 13 333-tap filter (B) on a 16k-sample sequence.
- ``generate-T``: generating T tokens one at a time, the distilled order-16 recurrence stepping (A; order 4 at
  --quick sizes) against recomputing the FFT convolution over the whole prefix for every token (B).
- ``steps-vs-offline-T``: the distilled recurrence stepping through T = 4k, 16k, 64k tokens (A) against one
  offline FFT convolution of all T tokens at once (B, not a generator: the parallel floor); A ms / T is the
  recurrence's per-token cost, flat in T. (Recomputing per token at 16k and 64k tokens would take minutes per
  repeat; ``next-token-at-P`` measures its per-token cost instead.)
- ``next-token-at-P``: the cost of the single token at position P (A: one recurrence step from the state after
  P tokens; B: FFT convolution of the P + 1 prefix), at P = 4k, 16k and 64k: the recurrence's per-token cost is
  flat in P.
- ``tcnca-L``: one TCNCA layer (S82; d 64, value width 128, query/key width 32) with chunked attention over
  chunks of 256 (A) against the same layer attending causally over the whole sequence (B, chunk = L), at
  L = 1k, 4k and 8k: A ms / L is flat (linear cost in length), B grows with L.
"""

from __future__ import annotations

from functools import partial

import torch
from torch import Tensor, nn

from convzoo.deploy.distill import DistilledConv, distill
from convzoo.models.tcnca import TCNCAConfig, TCNCALayer
from convzoo.ops.base import create_op
from convzoo.ops.long_conv import ExplicitCausalConv, fft_causal_conv
from convzoo.profile.bench import Case
from convzoo.registry import SUITES

__all__ = ["RecomputeGenerator", "RecurrentGenerator", "sequence_cases"]

FFT_LENGTHS = (1024, 4096, 16384, 65536)
GENERATE_TOKENS = (4096,)
OFFLINE_TOKENS = (4096, 16384, 65536)
NEXT_TOKEN_POSITIONS = (4096, 16384, 65536)
TCNCA_LENGTHS = (1024, 4096, 8192)  # full attention at 8k already holds a 256 MiB score matrix
TCNCA_CHUNK = 256
DISTILL_ORDER = 16


def _sequence(batch: int, channels: int, length: int) -> Tensor:
    return torch.randn(batch, channels, length, generator=torch.Generator().manual_seed(0))


class RecurrentGenerator(nn.Module):
    """Runs a distilled recurrence over the input one token at a time: ``(N, C, T)`` → ``(N, C, T)``."""

    def __init__(self, distilled: DistilledConv) -> None:
        super().__init__()
        self.distilled = distilled

    def forward(self, x: Tensor) -> Tensor:
        state = self.distilled.init_state(x.shape[0])
        outputs = []
        for t in range(x.shape[-1]):
            y, state = self.distilled.step(x[..., t], state)
            outputs.append(y)
        return torch.stack(outputs, dim=-1)  # (N, C, T)


class RecomputeGenerator(nn.Module):
    """Produces token t by FFT-convolving the whole prefix ``x[..., :t + 1]`` again (filter computed once)."""

    def __init__(self, filters: Tensor, skip: Tensor | None) -> None:
        super().__init__()
        self.register_buffer("filters", filters, persistent=False)  # (C, K)
        self.register_buffer("skip", skip, persistent=False)  # (C,)

    def forward(self, x: Tensor) -> Tensor:
        outputs = [fft_causal_conv(x[..., : t + 1], self.filters, self.skip)[..., -1] for t in range(x.shape[-1])]
        return torch.stack(outputs, dim=-1)  # (N, C, T)


class NextTokenRecurrent(nn.Module):
    """One recurrence step for the last token of ``x``, from the state left by the tokens before it."""

    def __init__(self, distilled: DistilledConv, prefix: Tensor) -> None:
        super().__init__()
        self.distilled = distilled
        state = distilled.init_state(prefix.shape[0])
        with torch.no_grad():
            for t in range(prefix.shape[-1]):
                _, state = distilled.step(prefix[..., t], state)
        self.register_buffer("state", state, persistent=False)  # (N, C, d)

    def forward(self, x: Tensor) -> Tensor:
        y, _ = self.distilled.step(x[..., -1], self.state)
        return y[..., None]  # (N, C, 1)


class NextTokenRecompute(RecomputeGenerator):
    """The FFT convolution of the whole prefix, keeping its last output."""

    def forward(self, x: Tensor) -> Tensor:
        return fft_causal_conv(x, self.filters, self.skip)[..., -1:]  # (N, C, 1)


def _fft_pair(channels: int, length: int, batch: int) -> tuple[nn.Module, nn.Module, Tensor]:
    op = create_op("long_conv", channels, channels, length, dim=1)
    return op.to_explicit("fft"), op.to_explicit("direct"), _sequence(batch, channels, length)


def _tcn_pair(channels: int, length: int, batch: int, tcn_options: dict) -> tuple[nn.Module, nn.Module, Tensor]:
    tcn = create_op("tcn", channels, channels, dim=1, **tcn_options)
    long_conv = create_op("long_conv", channels, channels, tcn.receptive_field, dim=1)
    return tcn, long_conv, _sequence(batch, channels, length)


def _distilled(channels: int, length: int) -> tuple[Tensor, Tensor, DistilledConv]:
    op = create_op("long_conv", channels, channels, length, dim=1)
    with torch.no_grad():
        filters, skip = op.filters().detach(), op.skip.detach()
    return filters, skip, distill(op, min(DISTILL_ORDER, length // 4))


def _generate_pair(channels: int, tokens: int, batch: int) -> tuple[nn.Module, nn.Module, Tensor]:
    filters, skip, distilled = _distilled(channels, tokens)
    return RecurrentGenerator(distilled), RecomputeGenerator(filters, skip), _sequence(batch, channels, tokens)


def _offline_pair(channels: int, tokens: int, batch: int) -> tuple[nn.Module, nn.Module, Tensor]:
    filters, skip, distilled = _distilled(channels, tokens)
    offline = ExplicitCausalConv(torch.cat([filters[:, :1] + skip[:, None], filters[:, 1:]], dim=1), "fft")
    return RecurrentGenerator(distilled), offline, _sequence(batch, channels, tokens)


def _next_token_pair(channels: int, position: int, batch: int) -> tuple[nn.Module, nn.Module, Tensor]:
    filters, skip, distilled = _distilled(channels, position + 1)
    x = _sequence(batch, channels, position + 1)
    return NextTokenRecurrent(distilled, x[..., :-1]), NextTokenRecompute(filters, skip), x


def _tcnca_pair(length: int, chunk: int, batch: int) -> tuple[nn.Module, nn.Module, Tensor]:
    torch.manual_seed(0)
    config = TCNCAConfig(dim=64, hidden=128, z_dim=32, ffn=128, layers=1, chunk_size=chunk, levels=3)
    chunked = TCNCALayer(config).eval()
    full = TCNCALayer(TCNCAConfig(**{**config.__dict__, "chunk_size": length})).eval()
    return chunked, full, _sequence(batch, config.dim, length)


@SUITES.register(
    "sequence",
    kind="suite",
    papers=("hyena-distill", "tcn-compressor", "tcnca"),
    summary="FFT long conv vs direct causal conv; uTCN vs FFT conv; distilled recurrence vs FFT recompute; "
    "TCNCA chunked vs full attention",
)
def sequence_cases(quick: bool = False, batch: int | None = None) -> list[Case]:
    """FFT vs direct at each length, TCN vs FFT at the TCN's receptive field, token-by-token generation, and
    TCNCA's chunked attention against full attention."""
    batch = batch or 1
    if quick:
        fft_lengths, tokens, offline, positions, length, channels = (64, 256), (32,), (32, 64), (64, 256), 64, 4
        tcn_options = {"kernel_size": 3, "blocks": 2, "width": 4, "dilation_growth": 2}
    else:
        fft_lengths, tokens, offline, positions = FFT_LENGTHS, GENERATE_TOKENS, OFFLINE_TOKENS, NEXT_TOKEN_POSITIONS
        length, channels = 16384, 8
        tcn_options = {"kernel_size": 13, "blocks": 4, "width": 32, "dilation_growth": 10}  # uTCN-300 (S92)
    tcnca_lengths, chunk = ((64, 128), 16) if quick else (TCNCA_LENGTHS, TCNCA_CHUNK)
    cases = [
        Case(f"fft-{n}", "fft causal conv", "direct causal conv1d", partial(_fft_pair, channels, n, batch), True)
        for n in fft_lengths
    ]
    tcn_channels = 4 if quick else 32
    cases.append(
        Case(
            f"tcn-vs-fft-{length}",
            f"tcn k{tcn_options['kernel_size']}×{tcn_options['blocks']} blocks",
            "long_conv fft (same receptive field)",
            partial(_tcn_pair, tcn_channels, length, batch, tcn_options),
        )
    )
    cases += [
        Case(f"generate-{t}", "distilled step", "fft recompute", partial(_generate_pair, channels, t, batch))
        for t in tokens
    ]
    cases += [
        Case(f"steps-vs-offline-{t}", "distilled step", "fft offline", partial(_offline_pair, channels, t, batch))
        for t in offline
    ]
    cases += [
        Case(f"next-token-at-{p}", "distilled step", "fft recompute", partial(_next_token_pair, channels, p, batch))
        for p in positions
    ]
    cases += [
        Case(f"tcnca-{n}", f"tcnca chunk {chunk}", "full causal attention", partial(_tcnca_pair, n, chunk, batch))
        for n in tcnca_lengths
    ]
    return cases
