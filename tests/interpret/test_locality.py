"""S72: the DSD task, the locally connected layer (a conv when its weights are tied), and the experiment."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from convzoo.interpret.locality import (
    LocallyConnected2d,
    dsd_models,
    dsd_task,
    sample_complexity,
    sample_complexity_png,
)


@pytest.mark.parametrize(("stride", "padding"), [((1, 1), (0, 0)), ((2, 1), (1, 2))])
def test_tied_locally_connected_layer_equals_the_conv(stride, padding):
    torch.manual_seed(0)
    conv = torch.nn.Conv2d(3, 5, (3, 2), stride=stride, padding=padding).double()
    layer = LocallyConnected2d(3, 5, (9, 7), (3, 2), stride, padding).double().tie(conv)
    x = torch.randn(2, 3, 9, 7, dtype=torch.float64)
    torch.testing.assert_close(layer(x), conv(x))
    # untied, it is not a conv: positions differ
    with torch.no_grad():
        layer.weight[layer.weight.shape[0] // 2].add_(1.0)  # an interior position (a corner may see only padding)
    assert not torch.allclose(layer(x), conv(x))


def test_locally_connected_layer_is_a_per_position_loop():
    torch.manual_seed(0)
    layer = LocallyConnected2d(2, 3, (4, 5), (2, 2)).double()
    x = torch.randn(1, 2, 4, 5, dtype=torch.float64)
    out = layer(x)
    for i in range(3):
        for j in range(4):
            kernel = layer.weight[i * 4 + j].view(3, 2, 2, 2)
            expected = F.conv2d(x[:, :, i : i + 2, j : j + 2], kernel)[0, :, 0, 0] + layer.bias[:, i, j]
            torch.testing.assert_close(out[0, :, i, j], expected)
    with pytest.raises(ValueError, match=r"expected \(N, C, 4, 5\)"):
        layer(torch.randn(1, 2, 5, 5))


def test_dsd_puts_the_signal_in_exactly_one_patch():
    x, y, w_star = dsd_task(64, k=6, d=5, signal=10.0, noise=0.0)
    patches = x.view(64, 6, 5)
    carrying = patches.abs().sum(2) > 0  # (n, k)
    assert (carrying.sum(1) == 1).all() and carrying.float().mean(0).min() > 0  # one patch each, every patch used
    signed = patches[carrying]  # (n, d)
    torch.testing.assert_close(signed, (2.0 * y - 1.0).unsqueeze(1) * 10.0 * w_star)
    assert torch.equal(dsd_task(8, 6, 5, seed=3)[0], dsd_task(8, 6, 5, seed=3)[0])


def test_the_three_learners_and_a_quick_experiment():
    models = dsd_models(k=4, d=3)
    x, _, _ = dsd_task(5, 4, 3)
    assert all(m(x).shape == (5, 2) for m in models.values())
    counts = {name: sum(p.numel() for p in m.parameters()) for name, m in models.items()}
    assert counts["CNN"] < counts["LCN"] < counts["FCN"]
    result = sample_complexity(k=4, d=3, sizes=(8, 16), test=64, steps=3)
    assert result.sizes == (8, 16) and set(result.errors) == {"CNN", "LCN", "FCN"} and len(result.rows()) == 3
    assert sample_complexity_png(result).startswith(b"\x89PNG")


@pytest.mark.slow
def test_weight_sharing_needs_fewer_samples():
    result = sample_complexity(k=8, d=8, sizes=(16, 64, 256), test=1000, steps=150)
    for index in range(3):
        assert result.errors["CNN"][index] < min(result.errors["LCN"][index], result.errors["FCN"][index])
