"""MultiHeadAttention and TransformerBlock against a loop-over-heads reference, cross-attention and errors."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from convzoo.layers.attention import MultiHeadAttention, TransformerBlock


def _reference(attn: MultiHeadAttention, x, context=None):
    """Attention written head by head with explicit softmax: q from x, k and v from context (or x)."""
    context = x if context is None else context
    width = attn.num_heads * attn.head_dim
    w, b = attn.qkv.weight, attn.qkv.bias
    q = x @ w[:width].T + b[:width]
    k = context @ w[width : 2 * width].T + b[width : 2 * width]
    v = context @ w[2 * width :].T + b[2 * width :]
    heads, weights = [], []
    for h in range(attn.num_heads):
        s = slice(h * attn.head_dim, (h + 1) * attn.head_dim)
        a = torch.softmax(q[..., s] @ k[..., s].transpose(1, 2) / math.sqrt(attn.head_dim), dim=-1)
        weights.append(a)
        heads.append(a @ v[..., s])
    return attn.proj(torch.cat(heads, dim=-1)), torch.stack(weights, dim=1)


def test_self_and_cross_attention_equal_the_per_head_reference():
    torch.manual_seed(0)
    attn = MultiHeadAttention(12, 3).double()
    x, ctx = torch.randn(2, 5, 12, dtype=torch.float64), torch.randn(2, 7, 12, dtype=torch.float64)
    for context in (None, ctx):
        expected, expected_w = _reference(attn, x, context)
        torch.testing.assert_close(attn(x, context), expected)
        y, w = attn(x, context, need_weights=True)
        torch.testing.assert_close(y, expected)
        torch.testing.assert_close(w, expected_w)
    assert w.shape == (2, 3, 5, 7)


def test_parameter_count_and_head_dim():
    attn = MultiHeadAttention(16, 2, head_dim=4, qkv_bias=False)
    assert sum(p.numel() for p in attn.parameters()) == 16 * 24 + 8 * 16 + 16
    assert attn.scale == 0.5


def test_transformer_block_is_pre_norm_residual():
    torch.manual_seed(0)
    block = TransformerBlock(8, 2, mlp_ratio=2.0, layer_scale=0.5).double().eval()
    x = torch.randn(2, 4, 8, dtype=torch.float64)
    h = x + 0.5 * block.attn(F.layer_norm(x, (8,), block.norm1.weight, block.norm1.bias, 1e-6))
    mlp = block.mlp
    expected = h + 0.5 * mlp[2](F.gelu(mlp[0](F.layer_norm(h, (8,), block.norm2.weight, block.norm2.bias, 1e-6))))
    torch.testing.assert_close(block(x), expected)
    assert block.mlp.hidden_features == 16


def test_errors_name_the_value():
    with pytest.raises(ValueError, match="num_heads must divide dim 10, got 3"):
        MultiHeadAttention(10, 3)
    with pytest.raises(ValueError, match=r"expected \(N, L, 8\) tokens, got \(2, 8\)"):
        MultiHeadAttention(8, 2)(torch.randn(2, 8))
