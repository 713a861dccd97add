"""TCNCA (S82): chunked attention against a block-diagonal full attention, causality, streaming, TCN, counts."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from convzoo import create_model
from convzoo.models.tcnca import TCNCA, TCNCAConfig, chunked_attention
from convzoo.registry import MODELS

TINY = {"dim": 8, "hidden": 6, "z_dim": 4, "ffn": 10, "layers": 2, "chunk_size": 5, "vocab_size": 11, "levels": 2}


def _model(**overrides):
    torch.manual_seed(0)
    return create_model("tcnca_enwik8", **{**TINY, **overrides}).double().eval()


def block_diagonal_attention(q, k, v, chunk, weights, causal):
    """Full L×L attention with every pair outside a chunk (and, if causal, every future key) masked, and the
    relative bias ``weights[C_max - 1 + j - i]``; written with explicit loops over query/key pairs."""
    batch, length, z_dim = q.shape
    c_max = (weights.shape[0] + 1) // 2
    out = torch.zeros(batch, length, v.shape[-1], dtype=q.dtype)
    for i in range(length):
        allowed = [j for j in range(length) if j // chunk == i // chunk and (not causal or j <= i)]
        scores = torch.stack(
            [(q[:, i] * k[:, j]).sum(-1) / math.sqrt(z_dim) + weights[c_max - 1 + j - i] for j in allowed], -1
        )
        attn = scores.softmax(-1)  # (N, |allowed|)
        out[:, i] = sum(attn[:, n, None] * v[:, j] for n, j in enumerate(allowed))
    return out


@pytest.mark.parametrize("causal", [True, False])
@pytest.mark.parametrize(("length", "chunk"), [(12, 4), (13, 4), (3, 8)])
def test_chunked_attention_equals_block_diagonal_reference(causal, length, chunk):
    g = torch.Generator().manual_seed(1)
    q, k = (torch.randn(2, length, 3, dtype=torch.float64, generator=g) for _ in range(2))
    v = torch.randn(2, length, 5, dtype=torch.float64, generator=g)
    weights = torch.randn(2 * chunk - 1, dtype=torch.float64, generator=g)
    c = min(chunk, length)
    offsets = torch.arange(c)
    bias = weights[chunk - 1 + offsets[None, :] - offsets[:, None]]
    expected = block_diagonal_attention(q, k, v, c, weights, causal)
    torch.testing.assert_close(chunked_attention(q, k, v, chunk, bias, causal), expected, rtol=1e-12, atol=1e-12)


def test_output_shape_and_causality():
    model = _model()
    tokens = torch.randint(0, 11, (2, 17))
    with torch.no_grad():
        base = model(tokens)
        assert base.shape == (2, 11, 17)
        for t in (0, 6, 16):
            changed = tokens.clone()
            changed[:, t + 1 :] = torch.randint(0, 11, changed[:, t + 1 :].shape)
            torch.testing.assert_close(model(changed)[..., : t + 1], base[..., : t + 1], rtol=0, atol=0)
        changed = tokens.clone()
        changed[:, 4] = (changed[:, 4] + 1) % 11
        assert (model(changed)[..., 4:] - base[..., 4:]).abs().max() > 0


def test_layer_is_causal_on_channels_first_input():
    layer = _model().layers[0]
    x = torch.randn(2, 8, 14, dtype=torch.float64)
    with torch.no_grad():
        base = layer(x)
        assert base.shape == x.shape  # (N, C, L) → (N, C, L)
        for t in (0, 5, 13):
            perturbed = x.clone()
            perturbed[..., t + 1 :] += 100 * torch.randn_like(perturbed[..., t + 1 :])
            torch.testing.assert_close(layer(perturbed)[..., : t + 1], base[..., : t + 1], rtol=0, atol=1e-12)


def test_bidirectional_variant_sees_the_rest_of_its_chunk_only():
    model = _model(causal=False)
    tokens = torch.randint(0, 11, (1, 10))
    changed = tokens.clone()
    changed[0, 3] = (changed[0, 3] + 1) % 11
    with torch.no_grad():
        diff = (model(changed) - model(tokens)).abs().amax(dim=1)[0]  # (L,)
    assert diff[:3].max() > 0  # the centred TCN and the chunk's attention look ahead
    with pytest.raises(ValueError, match="tcnca: init_state/step need a causal model"):
        model.init_state(1)


@pytest.mark.parametrize("length", [4, 13])
def test_streaming_equals_offline(length):
    model = _model()
    tokens = torch.randint(0, 11, (2, length))
    with torch.no_grad():
        state, outputs = model.init_state(2), []
        for t in range(length):
            logits, state = model.step(tokens[:, t], state)
            outputs.append(logits)
        torch.testing.assert_close(torch.stack(outputs, dim=-1), model(tokens), rtol=1e-11, atol=1e-11)


def test_tcn_equals_loop_reference_and_receptive_field():
    tcn = _model(levels=3, dilation_base=2).layers[0].attention.tcn
    assert tcn.dilations == [1, 2, 4] and tcn.receptive_field == 1 + 2 * 7
    x = torch.randn(2, 8, 20, dtype=torch.float64)
    h = x.clone()
    with torch.no_grad():
        for conv in tcn.convs:
            w, d = conv.weight[:, 0], conv.dilation[0]  # (C, k)
            y = conv.bias[None, :, None].expand_as(h).clone()
            for t in range(h.shape[-1]):
                for j in range(3):
                    src = t - (2 - j) * d
                    if src >= 0:
                        y[..., t] += w[:, j] * h[..., src]
            h = h + F.gelu(y)
        expected = F.silu(h + tcn.omega[:, None] * x)
        torch.testing.assert_close(tcn(x), expected, rtol=1e-12, atol=1e-12)


def test_registered_enwik8_configuration_and_parameter_count():
    """MEGA enwik8-base sizes (12 × d 512, value/FFN 1024, z 128, chunk 2048). Count derived by hand per layer:
    two LayerNorms, v/mx/h projections, γ, β, the chunk's relative bias, the TCN (5 depthwise convs, ω), the FFN."""
    entry = MODELS.get("tcnca_enwik8")
    assert entry.kind == "sequence" and entry.papers == ("tcnca",)
    config = entry.info.config
    assert (config.layers, config.dim, config.hidden, config.z_dim, config.ffn) == (12, 512, 1024, 128, 1024)
    assert config.chunk_size == 2048 and config.causal
    d, h, z, f, c, v = 512, 1024, 128, 1024, 2048, 256
    attention = 2 * d + (d * h + h) + (d * (2 * d + z + h) + 2 * d + z + h) + (h * d + d) + 4 * z + (2 * c - 1)
    tcn = 5 * (3 * d + d) + d
    ffn = 2 * d + (d * f + f) + (f * d + d)
    with torch.device("meta"):
        model = TCNCA(config)
    assert sum(p.numel() for p in model.parameters()) == 12 * (attention + tcn + ffn) + v * d


def test_backward_reaches_every_parameter():
    model = _model()
    model(torch.randint(0, 11, (2, 9))).sum().backward()
    assert all(p.grad is not None for p in model.parameters())


def test_bad_inputs():
    model = _model()
    with pytest.raises(ValueError, match=r"tcnca: tokens must be \(N, L\) int64 tokens, got \(2, 3, 4\)"):
        model(torch.zeros(2, 3, 4, dtype=torch.long))
    with pytest.raises(ValueError, match=r"tcnca: token_t must be \(N,\) int64 tokens"):
        model.step(torch.zeros(2, 1, dtype=torch.long), model.init_state(2))
    with pytest.raises(ValueError, match="tcnca: chunk_size must be a positive int, got 0"):
        TCNCA(TCNCAConfig(chunk_size=0))
