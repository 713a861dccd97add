"""ConvMath (S58): causal decoder, incremental decoding equals teacher forcing, layer reference, greedy, counts."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from convzoo import create_model
from convzoo.models.convmath import ConvMath, ConvMathConfig
from convzoo.registry import MODELS
from convzoo.testing import randomize_batchnorm_

TINY = {"embed_dim": 8, "decoder_layers": ((6, 3), (6, 3), (10, 2)), "out_embed_dim": 5, "vocab_size": 13}


def _model(**overrides):
    torch.manual_seed(0)
    return randomize_batchnorm_(create_model("convmath", **{**TINY, **overrides})).double().eval()


def _image(batch=2, height=16, width=40):
    return torch.randn(batch, 1, height, width, dtype=torch.float64, generator=torch.Generator().manual_seed(3))


def test_output_shapes_and_memory_size():
    model = _model()
    with torch.no_grad():
        memory = model.encode(_image())
        assert memory.shape == (2, 2 * 5, 8)  # (N, ⌊16/8⌋·⌊40/8⌋, e)
        assert model(_image(), torch.randint(0, 13, (2, 7))).shape == (2, 13, 7)


def test_decoder_is_causal():
    model = _model()
    image, target = _image(), torch.randint(0, 13, (2, 10))
    with torch.no_grad():
        base = model(image, target)
        for t in (0, 4, 9):
            changed = target.clone()
            changed[:, t:] = (changed[:, t:] + 1) % 13
            out = model(image, changed)
            torch.testing.assert_close(out[..., :t], base[..., :t], rtol=0, atol=0)
            assert (out[..., t] - base[..., t]).abs().max() > 0


def test_every_step_attends_to_the_whole_image():
    model = _model()
    image, target = _image(), torch.randint(0, 13, (2, 4))
    changed = image.clone()
    changed[..., -8:, -8:] += 1.0  # only the bottom-right cell of the memory
    with torch.no_grad():
        diff = (model(changed, target) - model(image, target)).abs().amax(dim=1)  # (N, T)
    assert (diff > 0).all()


@pytest.mark.parametrize("length", [1, 9])
def test_incremental_decoding_equals_teacher_forcing(length):
    model = _model()
    image, target = _image(), torch.randint(0, 13, (2, length))
    with torch.no_grad():
        state, outputs = model.init_state(image), []
        for t in range(length):
            logits, state = model.step(target[:, t], state)
            outputs.append(logits)
        torch.testing.assert_close(torch.stack(outputs, dim=-1), model(image, target), rtol=1e-12, atol=1e-12)


def test_decoder_layer_equals_loop_reference():
    """ConvS2S layer written per position: causal GLU conv, attention, √½ scalings, projected residual."""
    layer = _model().layers[2]  # 6 → 10 channels, kernel 2: a projected residual
    g = torch.Generator().manual_seed(5)
    x = torch.randn(2, 6, 7, dtype=torch.float64, generator=g)
    emb = torch.randn(2, 7, 8, dtype=torch.float64, generator=g)
    memory = torch.randn(2, 4, 8, dtype=torch.float64, generator=g)
    w, b = layer.conv.weight, layer.conv.bias  # (20, 6, 2), (20,)
    expected = torch.zeros(2, 10, 7, dtype=torch.float64)
    with torch.no_grad():
        for t in range(7):
            conv = b.clone().expand(2, 20).clone()
            for j in range(2):
                src = t - (1 - j)
                if src >= 0:
                    conv = conv + x[:, :, src] @ w[:, :, j].t()
            y = conv[:, :10] * torch.sigmoid(conv[:, 10:])  # GLU
            d = (F.linear(y, layer.to_embed.weight, layer.to_embed.bias) + emb[:, t]) * math.sqrt(0.5)
            attn = torch.softmax(torch.einsum("ne,nse->ns", d, memory), dim=-1)
            context = torch.einsum("ns,nse->ne", attn, memory) * math.sqrt(4)
            y = (F.linear(context, layer.from_embed.weight, layer.from_embed.bias) + y) * math.sqrt(0.5)
            residual = F.linear(x[:, :, t], layer.residual.weight, layer.residual.bias)
            expected[:, :, t] = (y + residual) * math.sqrt(0.5)
        torch.testing.assert_close(layer(x, emb, memory), expected, rtol=1e-12, atol=1e-12)


def test_greedy_generation_takes_the_argmax_of_teacher_forced_logits():
    model = _model()
    image = _image()
    generated = model.generate(image, start=0, max_length=6)
    assert generated.shape == (2, 6)
    with torch.no_grad():
        logits = model(image, torch.cat([torch.zeros(2, 1, dtype=torch.long), generated], dim=1))
    assert torch.equal(logits[..., :-1].argmax(dim=1), generated)


def test_registered_configuration_and_parameter_count():
    """ConvS2S defaults: embedding 512, 20 × (512, k 3), out embedding 256, 1024 positions. Count by hand:
    the CNN (3×3 convs; BN convs carry no bias), the cell projection, embeddings, fc1, 20 layers, fc2, fc3."""
    entry = MODELS.get("convmath")
    assert entry.kind == "sequence" and entry.papers == ("convmath",)
    config = entry.info.config
    assert config.decoder_layers == ((512, 3),) * 20 and config.embed_dim == 512 and config.out_embed_dim == 256
    e, c, v, o, p = 512, 512, config.vocab_size, 256, 1024
    cnn = (9 * 1 * 64 + 64) + (9 * 64 * 128 + 128) + (9 * 128 * 256 + 2 * 256) + (9 * 256 * 256 + 256)
    cnn += (9 * 256 * 512 + 2 * 512) + (9 * 512 * 512 + 2 * 512)
    layer = (c * 2 * c * 3 + 2 * c) + (c * e + e) + (e * c + c)
    expected = cnn + (512 * e + e) + v * e + p * e + (e * c + c) + 20 * layer + (c * o + o) + (o * v + v)
    with torch.device("meta"):
        model = ConvMath(config)
    assert sum(p.numel() for p in model.parameters()) == expected


def test_backward_reaches_every_parameter():
    model = _model().train()
    model(_image(), torch.randint(0, 13, (2, 5))).sum().backward()
    assert all(p.grad is not None for p in model.parameters())


def test_bad_inputs():
    model = _model()
    with pytest.raises(ValueError, match=r"convmath: expected an image \(N, 1, H, W\), got shape \(2, 3, 16, 16\)"):
        model(torch.zeros(2, 3, 16, 16, dtype=torch.float64), torch.zeros(2, 3, dtype=torch.long))
    with pytest.raises(ValueError, match=r"convmath: target_in must be \(N, T\) int64 tokens"):
        model(_image(), torch.zeros(2, 3))
    with pytest.raises(ValueError, match="convmath: target length 5 exceeds max_positions=4"):
        _model(max_positions=4)(_image(), torch.zeros(2, 5, dtype=torch.long))
    with pytest.raises(ValueError, match="convmath: decoder_layers must be a non-empty sequence"):
        ConvMath(ConvMathConfig(decoder_layers=()))
