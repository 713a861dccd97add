"""Balanced mixture of SuperNets (S66): the search space, the SuperNet against its standalone networks and a
functional reference, and the balancing's defining property."""

from __future__ import annotations

import itertools
import math

import pytest
import torch
import torch.nn.functional as F

from convzoo.models import create_model
from convzoo.models.pooling_supernet import (
    RESNET20_WIDTHS,
    PoolingSupernet,
    balance,
    marginal_kl,
    pooling_configurations,
)


@pytest.mark.parametrize("layers, pools", [(10, 2), (10, 1), (10, 3), (5, 2), (4, 3), (6, 0)])
def test_configurations_are_every_placement_of_the_pools(layers, pools):
    configs = pooling_configurations(layers, pools)
    assert len(configs) == math.comb(layers - 1, pools)
    # brute force over every 0/1 vector of the layers: no pool before the stem, exactly `pools` ones
    brute = {
        tuple(i for i, bit in enumerate(bits) if bit)
        for bits in itertools.product((0, 1), repeat=layers)
        if bits[0] == 0 and sum(bits) == pools
    }
    assert set(configs) == brute and len(set(configs)) == len(configs)


def test_the_resnet20_space_has_36_configurations_and_the_usual_one():
    configs = pooling_configurations(len(RESNET20_WIDTHS), 2)
    assert len(configs) == 36  # C(9, 2), the official rn20_lookup_space.csv lists 36
    assert (4, 7) in configs  # pools where the width doubles: the usual ResNet-20


def _reference(state: dict[str, torch.Tensor], widths, pool_at, x):
    """The SuperNet's forward written from its weights alone: conv, batch-statistics BN, ReLU, max-pools."""

    def bn(t):
        return F.batch_norm(t, None, None, training=True, eps=1e-5)

    x = F.relu(bn(F.conv2d(x, state["stem.0.weight"], padding=1)))
    for i in range(1, len(widths)):
        if i in pool_at:
            x = F.max_pool2d(x, 2)
        p = f"blocks.{i - 1}."
        out = F.relu(bn(F.conv2d(x, state[p + "conv1.weight"], padding=1)))
        out = bn(F.conv2d(out, state[p + "conv2.weight"], padding=1))
        short = bn(F.conv2d(x, state[p + "shortcut.0.weight"])) if widths[i - 1] != widths[i] else x
        x = F.relu(out + short)
    return x.mean(dim=(2, 3)) @ state["fc.weight"].T + state["fc.bias"]


@pytest.mark.parametrize("pool_at", [(4, 7), (1, 2), (8, 9), (1, 9), (3, 5)])
def test_a_configurations_standalone_network_equals_the_supernet(pool_at):
    torch.manual_seed(0)
    supernet = PoolingSupernet(RESNET20_WIDTHS, num_classes=10, in_chans=3).double()
    x = torch.randn(4, 3, 32, 32, dtype=torch.float64)
    with torch.no_grad():
        shared = supernet(x, pool_at)
        standalone = supernet.extract(pool_at)(x)
        reference = _reference(supernet.state_dict(), RESNET20_WIDTHS, pool_at, x)
    assert torch.allclose(standalone, shared, atol=1e-12, rtol=0)
    assert torch.allclose(reference, shared, atol=1e-12, rtol=0)
    other = (2, 6) if pool_at != (2, 6) else (4, 7)
    assert not torch.allclose(supernet(x, other), shared)  # the placement matters


def test_the_standalone_network_strides_follow_its_pools():
    net = create_model("pooling_resnet20", pool_at=(1, 9), in_chans=1)
    stages = net.forward_stages(torch.randn(2, 1, 32, 32))
    assert [tuple(s.shape[1:]) for s in stages] == [(16, 32, 32), (64, 16, 16), (64, 8, 8)]
    assert [f.reduction for f in net.feature_info] == [1, 2, 4]


def test_the_mixture_holds_k_supernets_of_the_counted_size():
    mixture = create_model("pooling_supernet_resnet20")
    single = create_model("pooling_resnet20", num_classes=10)
    assert sum(p.numel() for p in single.parameters()) == 270_906  # counted by hand in the module
    assert sum(p.numel() for p in mixture.parameters()) == 4 * 270_906
    assert mixture.configs.shape == (36, 2) and mixture.scores.shape == (36, 4)
    assert bool((mixture.scores == 1).all())  # the official starting score


def _probs(rows: int, k: int, temperature: float, seed: int) -> torch.Tensor:
    scores = torch.rand(rows, k, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    return torch.softmax(scores * temperature, dim=1)


@pytest.mark.parametrize("rows, k, temperature", [(36, 4, 1.0), (36, 4, 60.0), (36, 2, 100.0), (10, 5, 20.0)])
def test_balancing_makes_every_supernet_receive_the_same_share(rows, k, temperature):
    probs = _probs(rows, k, temperature, seed=rows + k)
    balanced = balance(probs, threshold=1e-12)
    assert torch.allclose(balanced.sum(dim=1), torch.ones(rows, dtype=torch.float64), atol=1e-12)
    assert torch.allclose(balanced.mean(dim=0), torch.full((k,), 1 / k, dtype=torch.float64), atol=1e-5)
    # only a factor per SuperNet (and the row normaliser) changes: log p' − log p = r_a + c_m, a rank-one sum
    change = balanced.log() - probs.log()
    centred = change - change.mean(dim=1, keepdim=True) - change.mean(dim=0, keepdim=True) + change.mean()
    assert centred.abs().max() < 1e-9
    assert marginal_kl(balanced) <= 1e-12
    # at the default threshold the loop stops as soon as KL ≤ 1e-4, and a balanced matrix is left as it is
    loose = balance(probs)
    assert marginal_kl(loose) <= 1e-4
    assert torch.equal(balance(balanced, threshold=1e-12), balanced)


def test_balancing_a_skewed_assignment_moves_configurations_to_the_starved_supernet():
    probs = torch.tensor([[0.9, 0.1], [0.8, 0.2], [0.7, 0.3], [0.6, 0.4]], dtype=torch.float64)
    balanced = balance(probs, threshold=1e-12)
    assert balanced.argmax(dim=1).tolist() == [0, 0, 1, 1]  # two configurations each, the least keen ones move
    assert (balanced[:, 0].argsort() == probs[:, 0].argsort()).all()  # their order of preference is kept


def test_the_score_update_is_the_exponential_moving_average():
    mixture = create_model("pooling_supernet_resnet20", supernets=2, widths=(4, 4, 8, 8))
    mixture.record(1, 0, 0.5, decay=0.9)
    mixture.record(1, 0, 0.25, decay=0.9)
    assert mixture.scores[1, 0].item() == pytest.approx(0.9 * (0.9 * 1 + 0.1 * 0.5) + 0.1 * 0.25, abs=1e-15)
    assert mixture.counts[1, 0].item() == 2 and mixture.counts.sum().item() == 2


def test_refusals():
    supernet = PoolingSupernet((4, 4, 8))
    x = torch.randn(2, 3, 8, 8)
    for bad in [(0, 1), (2, 1), (1, 1), (3,), "1,2"]:
        with pytest.raises(ValueError, match="pool_at must be"):
            supernet(x, bad)
    with pytest.raises(ValueError, match="pool_at must be"):
        create_model("pooling_resnet20", pool_at=(4, 10))
    with pytest.raises(ValueError, match="positive probabilities"):
        balance(torch.tensor([[1.0, 0.0], [0.5, 0.5]]))
    with pytest.raises(ValueError, match="pools must be"):
        pooling_configurations(5, 5)
    with pytest.raises(ValueError, match="takes no op="):
        create_model("pooling_resnet20", op="dwsep")
