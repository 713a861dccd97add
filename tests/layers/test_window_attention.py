"""Shifted-window attention (Swin; S50's mixer): equals full attention over the padded grid with an explicit
per-pair mask and relative-position bias (float64), for shifted and unshifted windows and ragged grids."""

from __future__ import annotations

import pytest
import torch

from convzoo.layers.window_attention import ShiftedWindowAttention, window_partition, window_reverse


def reference(attn: ShiftedWindowAttention, x: torch.Tensor) -> torch.Tensor:
    """Full attention over every token of the zero-padded grid; token pair (p, q) allowed iff, after the cyclic
    roll by −shift, both lie in one window and, along each axis, either both or neither were wrapped round."""
    n, h, w, c = x.shape
    win, shift, heads = attn.window_size, attn.shift, attn.num_heads
    hp, wp = -(-h // win) * win, -(-w // win) * win
    grid = torch.zeros(n, hp, wp, c, dtype=x.dtype)
    grid[:, :h, :w] = x
    tokens = grid.reshape(n, hp * wp, c)
    q, k, v = (tokens @ attn.qkv.weight.T + attn.qkv.bias).chunk(3, -1)  # each (N, L, C)
    d = c // heads
    positions = [(i, j) for i in range(hp) for j in range(wp)]
    rolled = [((i - shift) % hp, (j - shift) % wp) for i, j in positions]
    wrapped = [(i < shift, j < shift) for i, j in positions]
    span = 2 * win - 1
    out = torch.zeros(n, hp * wp, c, dtype=x.dtype)
    for a, (ra, ca) in enumerate(rolled):
        for head in range(heads):
            sl = slice(head * d, (head + 1) * d)
            scores = torch.full((n, hp * wp), float("-inf"), dtype=x.dtype)
            for b, (rb, cb) in enumerate(rolled):
                same_window = (ra // win, ca // win) == (rb // win, cb // win)
                if same_window and (shift == 0 or wrapped[a] == wrapped[b]):
                    bias = attn.relative_position_bias_table[(ra - rb + win - 1) * span + (ca - cb + win - 1), head]
                    scores[:, b] = (q[:, a, sl] * k[:, b, sl]).sum(-1) * d**-0.5 + bias
            out[:, a, sl] = torch.softmax(scores, -1)[:, None, :].matmul(v[:, :, sl])[:, 0]
    out = out @ attn.proj.weight.T + attn.proj.bias
    return out.view(n, hp, wp, c)[:, :h, :w]


@pytest.mark.parametrize(("h", "w", "shift"), [(8, 8, 0), (8, 8, 2), (6, 7, 2), (2, 9, 2), (5, 4, 1)])
def test_equals_masked_full_attention(h, w, shift):
    torch.manual_seed(0)
    attn = ShiftedWindowAttention(6, 2, window_size=4, shift=shift).double()
    torch.nn.init.normal_(attn.relative_position_bias_table, std=1.0)  # make the bias matter
    x = torch.randn(2, h, w, 6, dtype=torch.float64)
    torch.testing.assert_close(attn(x), reference(attn, x), rtol=1e-10, atol=1e-10)


def test_window_partition_round_trip_and_layout():
    x = torch.arange(2 * 8 * 12 * 3, dtype=torch.float64).view(2, 8, 12, 3)
    windows = window_partition(x, 4)
    assert windows.shape == (2 * 2 * 3, 16, 3)
    assert torch.equal(windows[4], x[0, 4:8, 4:8].reshape(16, 3))  # batch 0, window row 1, column 1
    assert torch.equal(window_reverse(windows, 4, 8, 12), x)


def test_bad_arguments_raise():
    with pytest.raises(ValueError, match="shift"):
        ShiftedWindowAttention(8, 2, window_size=4, shift=4)
    with pytest.raises(ValueError, match="num_heads"):
        ShiftedWindowAttention(8, 3)
    with pytest.raises(ValueError, match="tokens"):
        ShiftedWindowAttention(8, 2)(torch.randn(2, 16, 8))
