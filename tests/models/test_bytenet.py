"""ByteNet (S105): decoder causality, encoder sees the whole source, dynamic unfolding, block structure, counts."""

from __future__ import annotations

import pytest
import torch

from convzoo.models.bytenet import ByteNet, ByteNetConfig
from convzoo.registry import MODELS

TINY = {"hidden": 4, "encoder_blocks": 3, "decoder_blocks": 3, "source_vocab": 11, "target_vocab": 13}


def _model(**overrides):
    torch.manual_seed(0)
    return MODELS.get("bytenet").obj(**{**TINY, **overrides}).double().eval()


def test_decoder_is_causal_in_the_target():
    model = _model()
    source = torch.randint(0, 11, (2, 6))
    target = torch.randint(0, 13, (2, 9))
    with torch.no_grad():
        base = model(source, target)
        for t in (0, 4, 8):
            changed = target.clone()
            changed[:, t:] = (changed[:, t:] + 1) % 13
            out = model(source, changed)
            torch.testing.assert_close(out[..., :t], base[..., :t], rtol=0, atol=0)
            assert (out[..., t] - base[..., t]).abs().max() > 0


def test_encoder_is_not_causal_and_unfolding_pads_with_zeros():
    model = _model(unfold_a=1.5, unfold_b=0.0)
    assert model.unfolded_length(6) == 9 and model.unfolded_length(5) == 8  # ceil(1.5 |s|)
    source = torch.randint(0, 11, (1, 6))
    target = torch.randint(0, 13, (1, 12))
    with torch.no_grad():
        representation = model.encode(source)
        assert representation.shape == (1, 8, 9)  # (N, 2d, |t̂|)
        changed = source.clone()
        changed[0, -1] = (changed[0, -1] + 1) % 11
        # the last source token reaches the first decoder step through the unmasked encoder
        assert (model(changed, target)[..., 0] - model(source, target)[..., 0]).abs().max() > 0
        # past |t̂| the decoder reads zeros: the same as decoding with an all-zero representation there
        zeroed = torch.cat([representation, torch.zeros(1, 8, 3, dtype=torch.float64)], dim=-1)
        torch.testing.assert_close(model.decode(zeroed, target), model(source, target))


def test_block_dilations_repeat_and_kernel_is_masked_in_the_decoder():
    model = _model(decoder_blocks=7, encoder_blocks=2)
    assert [b.conv.dilation[0] for b in model.decoder] == [1, 2, 4, 8, 16, 1, 2]
    assert all(b.causal for b in model.decoder) and not any(b.causal for b in model.encoder)
    assert model.decoder[0].reduce.in_channels == 8 and model.decoder[0].reduce.out_channels == 4  # 2d → d


def test_paper_configuration_and_parameter_count():
    """MT ByteNet: 30 + 30 blocks, d = 800, kernel 3. The paper publishes no parameter count; this is the count
    derived by hand from the block of Fig. 3: per block 3 LayerNorms (2·2d + 2·d + 2·d), 1×1 2d→d, 1×k d→d,
    1×1 d→2d (with biases)."""
    config = MODELS.get("bytenet").info.config
    assert (config.encoder_blocks, config.decoder_blocks, config.hidden, config.kernel_size) == (30, 30, 800, 3)
    assert config.dilations == (1, 2, 4, 8, 16) and config.unfold_a == 1.2 and config.unfold_b == 0
    d, k, v = 800, 3, 256
    block = (4 * d + 2 * d + 2 * d) + (2 * d * d + d) + (d * d * k + d) + (d * 2 * d + 2 * d)
    expected = 60 * block + 2 * v * 2 * d + (4 * d * 2 * d + 2 * d) + (2 * 2 * d) + (2 * d * v + v)
    with torch.device("meta"):
        model = ByteNet(config)
    assert sum(p.numel() for p in model.parameters()) == expected


def test_decoder_only_language_model_and_greedy_generation():
    lm = MODELS.get("bytenet_lm").obj(hidden=4, decoder_blocks=2, target_vocab=7).eval()
    assert not lm.has_encoder
    generated = lm.generate(None, start=0, max_length=5)
    assert generated.shape == (1, 5)
    # greedy: each generated token is the argmax of the teacher-forced logits at its step
    with torch.no_grad():
        logits = lm(None, torch.cat([torch.zeros(1, 1, dtype=torch.long), generated], dim=1))
    assert torch.equal(logits[..., :-1].argmax(dim=1), generated)


def test_backward_reaches_every_parameter():
    model = _model()
    loss = model(torch.randint(0, 11, (2, 4)), torch.randint(0, 13, (2, 5))).sum()
    loss.backward()
    assert all(p.grad is not None for p in model.parameters())


def test_bad_inputs():
    model = _model()
    with pytest.raises(ValueError, match="bytenet: this ByteNet has an encoder; pass source tokens"):
        model(None, torch.zeros(1, 3, dtype=torch.long))
    with pytest.raises(ValueError, match=r"bytenet: target_in must be \(N, length\) int64 tokens, got \(3,\)"):
        model(torch.zeros(1, 3, dtype=torch.long), torch.zeros(3, dtype=torch.long))
    lm = MODELS.get("bytenet_lm").obj(hidden=4, decoder_blocks=1)
    with pytest.raises(ValueError, match="bytenet: this ByteNet is a decoder only"):
        lm(torch.zeros(1, 3, dtype=torch.long), torch.zeros(1, 3, dtype=torch.long))
    assert isinstance(ByteNetConfig(), ByteNetConfig)
