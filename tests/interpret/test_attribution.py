"""S83/S101 attribution: Captum's methods through one call, and convzoo's own deconvnet projection and occlusion
sensitivity checked against Captum's implementation on a small net."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from convzoo.interpret.attribution import CAPTUM_METHODS, attribute, guided_projection, occlusion_sensitivity


def _net() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(3, 6, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(6, 8, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(8 * 4 * 4, 5),
    ).double().eval()  # fmt: skip


@pytest.mark.peer
@pytest.mark.parametrize("rule", ["deconvnet", "guided"])
def test_deconvnet_projection_matches_captum(rule):
    attr = pytest.importorskip("captum.attr")
    net, x = _net(), torch.randn(1, 3, 16, 16, dtype=torch.float64)
    projection, channel = guided_projection(net, x, "4", rule=rule)
    activation = net[:5](x)[0, channel]
    i, j = divmod(int(activation.argmax()), activation.shape[1])
    reference_type = attr.NeuronDeconvolution if rule == "deconvnet" else attr.NeuronGuidedBackprop
    with pytest.warns(UserWarning):
        reference = reference_type(net, net[4]).attribute(x, neuron_selector=(channel, i, j))
    assert projection.abs().max() > 0
    torch.testing.assert_close(projection, activation.max() * reference, rtol=1e-10, atol=1e-12)


def test_deconvnet_and_guided_differ_and_reach_functional_relus():
    class Functional(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.a, self.b = nn.Conv2d(1, 4, 3, padding=1), nn.Conv2d(4, 4, 3, padding=1)

        def forward(self, x):
            return self.b(F.relu(self.a(x)))

    torch.manual_seed(0)
    net, x = Functional().double(), torch.randn(1, 1, 8, 8, dtype=torch.float64)
    deconv, channel = guided_projection(net, x, "b")
    guided, _ = guided_projection(net, x, "b", channel, rule="guided")
    plain = torch.autograd.grad(net(x.requires_grad_())[0, channel].max(), x)[0]
    assert not torch.allclose(deconv, guided) and not torch.allclose(
        guided / guided.abs().max(), plain / plain.abs().max()
    )


@pytest.mark.peer
def test_occlusion_sensitivity_matches_captum_occlusion():
    attr = pytest.importorskip("captum.attr")
    net, x = _net(), torch.randn(1, 3, 16, 16, dtype=torch.float64)
    grid = occlusion_sensitivity(net, x, target=2, window=4, stride=4, batch=7)
    probability = torch.softmax(net(x), 1)[0, 2]
    occlusion = attr.Occlusion(lambda v: torch.softmax(net(v), 1))
    reference = occlusion.attribute(x, (3, 4, 4), (3, 4, 4), baselines=0.0, target=2)  # p(x) − p(occluded)
    assert grid.shape == (4, 4)
    torch.testing.assert_close(grid, (probability - reference[0, 0, ::4, ::4].double()), rtol=0, atol=1e-6)


def test_occlusion_sensitivity_finds_the_evidence():
    # a "detector" whose class-1 logit is the mean of the top-left 4×4 corner: only occluding it matters
    class Corner(nn.Module):
        def forward(self, x):
            score = x[:, :, :4, :4].mean((1, 2, 3))
            return torch.stack([torch.zeros_like(score), 10 * score - 5], 1)

    grid = occlusion_sensitivity(Corner(), torch.ones(1, 1, 12, 12), target=1, window=4, stride=4)
    assert grid[0, 0] < 0.01 and (grid.flatten()[1:] > 0.99).all()


@pytest.mark.peer
@pytest.mark.parametrize("method", CAPTUM_METHODS)
def test_every_captum_method_runs(method):
    pytest.importorskip("captum")
    net = _net().float()
    values = attribute(net, torch.randn(1, 3, 16, 16), method, window=4, stride=4, steps=4)
    assert values.shape == (1, 3, 16, 16) and torch.isfinite(values).all() and values.abs().sum() > 0


def test_errors_name_the_value():
    net, x = _net(), torch.randn(1, 3, 16, 16, dtype=torch.float64)
    with pytest.raises(ValueError, match=r"unknown layer '44'; did you mean"):
        guided_projection(net, x, "44")
    with pytest.raises(ValueError, match="rule must be one of"):
        guided_projection(net, x, "4", rule="lrp")
    with pytest.raises(ValueError, match=r"expected one image \(1, C, H, W\)"):
        occlusion_sensitivity(net, torch.randn(2, 3, 16, 16, dtype=torch.float64))
    with pytest.raises(ValueError, match="method must be one of"):
        attribute(net, x, "lime")
