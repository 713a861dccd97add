"""Causal dilated TCN with rapidly growing dilations and streaming inference (S92, micro-TCN)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from convzoo.core.validate import is_int
from convzoo.ops.base import Op
from convzoo.registry import OPS

__all__ = ["TCN", "TCNBlock", "TCNState"]

FILM_FEATURES = 32  # width of the conditioning embedding (micro-TCN: 16 → 32 → 32 MLP, FiLM from 32 features)


class TCNBlock(nn.Module):
    """conv (k, dilation d, causal, no bias) → BatchNorm (or FiLM) → PReLU, plus a 1×1 grouped residual conv.

    With ``film`` the BatchNorm has no affine and ``γ, β = Linear(32, 2 C_out)(cond)`` scale and shift it.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, dilation: int, film: bool) -> None:
        super().__init__()
        self.kernel_size = kernel_size
        self.dilation = dilation
        self.conv = nn.Conv1d(in_channels, out_channels, kernel_size, dilation=dilation, bias=False)
        self.norm = nn.BatchNorm1d(out_channels, affine=not film)
        self.film = nn.Linear(FILM_FEATURES, 2 * out_channels) if film else None
        self.act = nn.PReLU(out_channels)
        # micro-TCN's residual is a 1×1 conv grouped by input channel; it needs C_out % C_in == 0
        groups = in_channels if out_channels % in_channels == 0 else 1
        self.res = nn.Conv1d(in_channels, out_channels, 1, groups=groups, bias=False)

    @property
    def history(self) -> int:
        """Past samples one output needs besides the current one: ``(k - 1) · d``."""
        return (self.kernel_size - 1) * self.dilation

    def _finish(self, conv_out: Tensor, x: Tensor, cond: Tensor | None) -> Tensor:
        y = self.norm(conv_out)
        if self.film is not None:
            gamma, beta = self.film(cond).chunk(2, dim=-1)  # (N, C_out) each
            y = y * gamma[..., None] + beta[..., None]
        return self.act(y) + self.res(x)

    def forward(self, x: Tensor, cond: Tensor | None = None) -> Tensor:
        return self._finish(self.conv(F.pad(x, (self.history, 0))), x, cond)  # (N, C_out, L)

    def step(self, x_t: Tensor, buffer: Tensor, position: int, cond: Tensor | None = None) -> Tensor:
        """One output from input ``x_t`` ``(N, C_in)``; ``buffer`` ``(N, C_in, history + 1)`` is a ring of past
        inputs (updated in place) and ``position`` the index of ``x_t`` in the stream."""
        size = buffer.shape[-1]
        buffer[..., position % size] = x_t
        lags = torch.arange(self.kernel_size - 1, -1, -1, device=buffer.device) * self.dilation  # tap j sees t - lag
        taps = buffer[..., (position - lags) % size]  # (N, C_in, k), oldest first as the conv weight expects
        conv_out = F.conv1d(taps, self.conv.weight)  # (N, C_out, 1)
        return self._finish(conv_out, x_t[..., None], cond)[..., 0]  # (N, C_out)


@dataclass
class TCNState:
    """Streaming state of a :class:`TCN`: the next position and one ring buffer of past inputs per block."""

    position: int
    buffers: list[Tensor]


@OPS.register("tcn", kind="sequence", dims=(1,), papers=("tcn-compressor",))
class TCN(Op):
    """S92 Efficient neural networks for real-time modeling of analog dynamic range compression: micro-TCN.

    Input ``(N, C_in, L)`` → ``(N, C_out, L)``, causal. ``blocks`` :class:`TCNBlock` of ``width`` channels with
    dilation ``dilation_growth ** (b % stack_size)`` (1, 10, 100, 1000: "rapidly growing dilations"), then a 1×1
    conv to ``C_out`` and ``tanh``. With ``cond_dim > 0`` the blocks are FiLM-conditioned on device controls
    ``cond`` ``(N, cond_dim)`` through an MLP cond_dim → 16 → 32 → 32 (ReLU). Receptive field
    ``1 + (k - 1) Σ_b d_b`` (13 333 samples, about 300 ms at 44.1 kHz, for the paper's uTCN-300: 4 blocks,
    kernel 13, growth 10, width 32; defaults from csteinmetz1/micro-tcn). ``init_state``/``step`` stream one
    sample at a time in O(blocks · k · width²) with ring buffers, equal to the offline output (eval mode).
    Departure: each block is zero-padded on the left to keep length L (the paper crops a longer input instead,
    which equals this once the input is longer than the receptive field). ``bias`` is the output
    1×1 conv's (the block convs have none, as in micro-TCN). Stride 1 only.
    """

    odd_kernel = False
    max_stride = 1

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int | Sequence[int] = 13,
        stride: int | Sequence[int] = 1,
        *,
        dim: int = 1,
        bias: bool = True,
        blocks: int = 4,
        width: int = 32,
        dilation_growth: int = 10,
        stack_size: int = 10,
        cond_dim: int = 0,
        tanh: bool = True,
    ) -> None:
        super().__init__(in_channels, out_channels, kernel_size, stride, dim=dim, bias=bias)
        name = type(self).registry_name
        for what, value, low in (
            ("blocks", blocks, 1),
            ("width", width, 1),
            ("dilation_growth", dilation_growth, 1),
            ("stack_size", stack_size, 1),
            ("cond_dim", cond_dim, 0),
        ):
            if not is_int(value) or value < low:
                raise ValueError(f"{name}: {what} must be an int ≥ {low}, got {value!r}")
        self.cond_dim = cond_dim
        self.apply_tanh = bool(tanh)
        self.cond_net = (
            nn.Sequential(
                nn.Linear(cond_dim, 16),
                nn.ReLU(),
                nn.Linear(16, 32),
                nn.ReLU(),
                nn.Linear(32, FILM_FEATURES),
                nn.ReLU(),
            )
            if cond_dim
            else None
        )
        self.blocks = nn.ModuleList(
            TCNBlock(
                in_channels if b == 0 else width,
                width,
                self.kernel_size[0],
                dilation_growth ** (b % stack_size),
                film=cond_dim > 0,
            )
            for b in range(blocks)
        )
        self.output = nn.Conv1d(width, out_channels, 1, bias=bias)

    @property
    def receptive_field(self) -> int:
        return 1 + sum(block.history for block in self.blocks)

    def _embed(self, cond: Tensor | None, batch: int) -> Tensor | None:
        name = type(self).registry_name
        if self.cond_net is None:
            if cond is not None:
                raise ValueError(f"{name}: got cond but the op was built with cond_dim=0")
            return None
        if cond is None or cond.shape != (batch, self.cond_dim):
            shape = None if cond is None else tuple(cond.shape)
            raise ValueError(f"{name}: expected cond of shape ({batch}, {self.cond_dim}), got {shape}")
        return self.cond_net(cond)  # (N, 32)

    def _out(self, h: Tensor) -> Tensor:
        y = self.output(h)
        return torch.tanh(y) if self.apply_tanh else y

    def forward(self, x: Tensor, cond: Tensor | None = None) -> Tensor:
        self.check_input(x)
        film = self._embed(cond, x.shape[0])
        for block in self.blocks:
            x = block(x, film)
        return self._out(x)

    def init_state(self, batch: int) -> TCNState:
        """Zero history (the offline forward's left zero padding) for ``batch`` streams."""
        ref = self.output.weight
        buffers = [
            ref.new_zeros(batch, block.conv.in_channels, block.history + 1) for block in self.blocks
        ]  # (N, C_in, history + 1) each
        return TCNState(0, buffers)

    def step(self, x_t: Tensor, state: TCNState, cond: Tensor | None = None) -> tuple[Tensor, TCNState]:
        """Output at the next position for input ``x_t`` ``(N, C_in)``; updates ``state`` in place and returns it.

        Needs eval mode: in training mode BatchNorm would normalise each step by its own statistics.
        """
        name = type(self).registry_name
        if self.training:
            raise ValueError(f"{name}: step() needs eval mode (BatchNorm must use running statistics)")
        if x_t.dim() != 2 or x_t.shape[1] != self.in_channels:
            raise ValueError(f"{name}: step expects x_t of shape (N, {self.in_channels}), got {tuple(x_t.shape)}")
        film = self._embed(cond, x_t.shape[0])
        h = x_t
        for block, buffer in zip(self.blocks, state.buffers, strict=True):
            h = block.step(h, buffer, state.position, film)
        state.position += 1
        return self._out(h[..., None])[..., 0], state

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, receptive_field={self.receptive_field}, cond_dim={self.cond_dim}"
