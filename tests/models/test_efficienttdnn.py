"""EfficientTDNN (S111): sampled subnets fit their MACs budget and their MACs equal convzoo.profile's count; a
subnet equals a standalone TDNN built from the supernet's slices (weights shared, nothing retrained); the causal
trunk streamed chunk by chunk equals the offline trunk."""

from __future__ import annotations

import pytest
import torch

from convzoo.models.efficienttdnn import EfficientTDNN, EfficientTDNNConfig, TDNNChoice
from convzoo.profile import count_macs

pytest.importorskip("librosa", reason="librosa (the audio extra) is not installed: the log-mel front end needs it")

SMALL = EfficientTDNNConfig(
    classes=5, n_mels=16, width=16, max_depth=3, dilation_choices=(1, 2, 3), width_choices=(8, 16), agg=24, embedding=8
)


def supernet(**changes) -> EfficientTDNN:
    torch.manual_seed(0)
    model = EfficientTDNN(EfficientTDNNConfig(**{**SMALL.__dict__, **changes})).double().eval()
    for norm in [model.stem_norm, *model.norms]:
        norm.running_mean.uniform_(-0.3, 0.3)
        norm.running_var.uniform_(0.5, 1.5)
    return model


def test_sampled_subnets_fit_the_budget_and_their_macs_equal_the_profilers_count():
    model = supernet()
    x = torch.randn(1, 1, 3200, dtype=torch.float64)  # 21 frames
    full = model.subnet_macs(model.largest(), 21)
    assert full == count_macs(model, x)
    least = model.subnet_macs(TDNNChoice(1, (1,), 8), 21)
    for fraction, seed in [(0.2, 0), (0.5, 1), (0.8, 2)]:
        budget = int(least + fraction * (full - least))
        choice = model.sample(budget, 21, seed=seed)
        model.set_subnet(choice)
        assert least <= model.subnet_macs(choice, 21) <= budget
        assert count_macs(model, x) == model.subnet_macs(choice, 21)
    with pytest.raises(ValueError, match="no subnet fits"):
        model.sample(10, 21)


def test_a_subnet_equals_a_standalone_tdnn_built_from_the_supernets_slices():
    model = supernet()
    choice = TDNNChoice(2, (1, 3), 8)
    model.set_subnet(choice)
    small = supernet(width=8, max_depth=2, width_choices=(8,))
    small.set_subnet(choice)
    with torch.no_grad():
        small.stem.weight.copy_(model.stem.weight[:8])
        for big, little in zip([model.stem_norm, *model.norms], [small.stem_norm, *small.norms], strict=False):
            for name in ("weight", "bias", "running_mean", "running_var"):
                getattr(little, name).copy_(getattr(big, name)[:8])
        for i in range(2):
            small.blocks[i].weight.copy_(model.blocks[i].weight[:8, :8])
        small.aggregate.weight.copy_(torch.cat([model.aggregate.weight[:, :8], model.aggregate.weight[:, 16:24]], 1))
        small.embed.load_state_dict(model.embed.state_dict())
        small.classifier.load_state_dict(model.classifier.state_dict())
        x = torch.randn(2, 1, 3200, dtype=torch.float64)
        torch.testing.assert_close(model(x), small(x), rtol=1e-12, atol=1e-12)


def test_the_causal_trunk_streamed_chunk_by_chunk_equals_the_offline_trunk():
    model = supernet(causal=True)
    model.set_subnet(TDNNChoice(3, (2, 1, 3), 16))
    features = torch.randn(2, 16, 40, dtype=torch.float64)
    offline = model.trunk(features)[-1]  # (2, 16, 40)
    state, pieces, start = None, [], 0
    for size in (7, 13, 1, 19):
        out, state = model.stream_trunk(features[..., start : start + size], state)
        pieces.append(out)
        start += size
    torch.testing.assert_close(torch.cat(pieces, -1), offline, rtol=1e-12, atol=1e-12)
    changed = features.clone()
    changed[..., 30:] += 1.0  # the future does not reach the past
    torch.testing.assert_close(model.trunk(changed)[-1][..., :30], offline[..., :30], rtol=0, atol=0)
    with pytest.raises(ValueError, match="needs causal=True"):
        supernet().stream_trunk(features)


def test_bad_subnets_are_refused():
    model = supernet()
    with pytest.raises(ValueError, match="dilations must be 2 of"):
        model.set_subnet(TDNNChoice(2, (1,), 8))
    with pytest.raises(ValueError, match="width must be one of"):
        model.set_subnet(TDNNChoice(1, (1,), 12))
