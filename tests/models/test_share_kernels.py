"""share_kernels (S119, inter-layer kernel sharing): reductions counted by hand, ties that survive training steps."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from convzoo.models import create_model
from convzoo.models.share_kernels import share_kernels
from convzoo.registry import TRANSFORMS


def _params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def test_registered_as_a_transform():
    entry = TRANSFORMS.get("share_kernels")
    assert entry.obj is share_kernels
    assert entry.papers == ("kernel-sharing",)


def test_resnet18_reduction_matches_a_hand_count():
    model = create_model("resnet18")
    before = _params(model)
    report = share_kernels(model)
    # ResNet-18, per stage, 3×3 convs without bias. Stage 1: four 64→64 stride-1 convs, one kept → 3 removed.
    # Stages 2–4: the first block's 3×3 is stride 2 and widens (C/2 → C), unique; the other three C→C stride-1
    # 3×3s are isomorphic → 2 removed. The stride-2 1×1 shortcut of each stage is alone; the stem is outside.
    expected = 3 * 64 * 64 * 9 + 2 * 128 * 128 * 9 + 2 * 256 * 256 * 9 + 2 * 512 * 512 * 9
    assert report.reduction == expected == 6_303_744
    assert report.params_before == before == 11_689_512
    assert report.params_after == _params(model) == before - expected
    assert [len(g.tied) + 1 for g in report.groups] == [4, 3, 3, 3]
    assert [g.stage for g in report.groups] == ["stages.0", "stages.1", "stages.2", "stages.3"]
    assert sum(g.saved for g in report.groups) == expected
    modules = dict(model.named_modules())
    for tied, owner in report.tied.items():
        assert modules[tied].weight is modules[owner].weight
    assert "stages.1.0.body.0" not in report.tied  # the stride-2 widening conv stays its own
    assert modules["stem.0"].weight is not modules["stages.0.0.body.0"].weight
    assert "6,303,744" in str(report)


@pytest.mark.parametrize("optimizer", ["sgd", "adamw"])
def test_tied_weights_stay_tied_after_a_training_step(optimizer):
    torch.manual_seed(0)
    model = create_model("resnet18", num_classes=10)
    report = share_kernels(model)
    if optimizer == "sgd":
        opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=1e-4)
    else:
        opt = torch.optim.AdamW(model.parameters(), lr=1e-2)
    modules = dict(model.named_modules())
    owner = modules[report.groups[0].owner]
    start = owner.weight.detach().clone()
    for _ in range(2):
        opt.zero_grad()
        loss = nn.functional.cross_entropy(model(torch.randn(4, 3, 32, 32)), torch.randint(0, 10, (4,)))
        loss.backward()
        opt.step()
    assert not torch.equal(owner.weight, start)  # it trained
    for tied, owner_name in report.tied.items():
        assert modules[tied].weight is modules[owner_name].weight
        assert torch.equal(modules[tied].weight, modules[owner_name].weight)
    assert model(torch.randn(2, 3, 32, 32)).shape == (2, 10)


def test_shared_kernel_gets_the_sum_of_the_layers_gradients():
    torch.manual_seed(0)
    a, b = nn.Conv2d(4, 4, 3, padding=1, bias=False), nn.Conv2d(4, 4, 3, padding=1, bias=False)
    b.weight = nn.Parameter(a.weight.detach().clone())
    x = torch.randn(2, 4, 6, 6)
    untied = nn.Sequential(a, b)
    untied(x).square().sum().backward()
    expected = a.weight.grad + b.weight.grad
    tied = nn.Sequential(nn.Conv2d(4, 4, 3, padding=1, bias=False), nn.Conv2d(4, 4, 3, padding=1, bias=False))
    tied[0].weight = nn.Parameter(a.weight.detach().clone())
    share_kernels(tied)
    tied(x).square().sum().backward()
    torch.testing.assert_close(tied[0].weight.grad, expected)


def test_nothing_to_share_reports_zero():
    model = nn.Sequential(nn.Conv2d(3, 8, 3), nn.ReLU(), nn.Conv2d(8, 16, 3), nn.Conv2d(16, 16, 3, stride=2))
    report = share_kernels(model)
    assert report.reduction == 0 and report.groups == [] and report.ratio == 1.0
    assert report.params_before == report.params_after == _params(model)


def test_running_twice_removes_nothing_more():
    model = create_model("resnet18")
    share_kernels(model)
    assert share_kernels(model).reduction == 0


def test_without_stages_the_parent_module_is_the_stage():
    def conv(stride=1, dilation=1, bias=True):
        return nn.Conv2d(8, 8, 3, stride, padding=dilation, dilation=dilation, bias=bias)

    inner = nn.Sequential(conv(), conv(), conv(stride=2), conv(dilation=2))
    model = nn.Sequential(conv(), conv(), inner, conv(bias=False))
    report = share_kernels(model)
    # root: "0" and "1" tie (the bias-free "3" differs); inner: "0" and "1" tie, strided and dilated stay apart;
    # nothing ties across the two parents. Each tie saves 8·8·9 weights + 8 biases.
    assert report.tied == {"1": "0", "2.1": "2.0"}
    assert report.reduction == 2 * (8 * 8 * 9 + 8)
    assert model[1].bias is model[0].bias


def test_share_bias_false_keeps_biases():
    model = nn.Sequential(nn.Conv2d(8, 8, 3, padding=1), nn.Conv2d(8, 8, 3, padding=1))
    report = share_kernels(model, share_bias=False)
    assert report.reduction == 8 * 8 * 9
    assert model[0].weight is model[1].weight and model[0].bias is not model[1].bias


def test_explicit_stages_and_features_only():
    model = create_model("resnet18", features_only=True)
    assert share_kernels(model).reduction == 6_303_744  # finds model.model.stages
    other = create_model("resnet18")
    report = share_kernels(other, stages=[other.stages[0]])
    assert report.reduction == 3 * 64 * 64 * 9


def test_errors():
    with pytest.raises(TypeError, match="share_kernels: expected an nn.Module"):
        share_kernels("resnet18")
    with pytest.raises(TypeError, match="share_kernels: stages must be nn.Modules"):
        share_kernels(nn.Conv2d(1, 1, 1), stages=["stages.0"])
