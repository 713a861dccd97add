"""deploy_form: re-parameterised, BatchNorms folded, every layout timed beside the model as given; equal outputs."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from convzoo.deploy.layout import DeployFormReport, InLayout, deploy_form, layouts_for
from convzoo.models import create_model
from convzoo.ops import create_op
from convzoo.ops.base import Op


def _trained_like(model: nn.Module) -> nn.Module:
    """BatchNorms with running statistics that are not the identity, as after training."""
    generator = torch.Generator().manual_seed(0)
    for module in model.modules():
        if isinstance(module, nn.BatchNorm2d):
            module.running_mean.copy_(torch.randn(module.num_features, generator=generator) * 0.1)
            module.running_var.copy_(torch.rand(module.num_features, generator=generator) + 0.5)
    return model.eval()


def _unwrapped(module: nn.Module) -> nn.Module:
    return module.model if isinstance(module, InLayout) else module


def test_dilated_reparam_deploys_as_one_conv_with_its_batch_norm_folded():
    torch.manual_seed(0)
    model = _trained_like(nn.Sequential(create_op("dilated_reparam", 8, 8, 5), nn.BatchNorm2d(8)))
    x = torch.randn(1, 8, 12, 12)
    deployed, report = deploy_form(model, x, repeats=3, warmup=1)
    inner = _unwrapped(deployed)
    assert type(inner[0]) is nn.Conv2d and inner[0].kernel_size == (5, 5) and inner[0].groups == 8
    assert isinstance(inner[1], nn.Identity)
    assert report.reparam.merged == {"0": "dilated_reparam"} and report.batch_norms_folded == 1
    torch.testing.assert_close(deployed(x), model(x), rtol=1e-4, atol=1e-5)
    assert report.max_abs_diff < 1e-4


def test_mixer_resnet20_deploy_form_keeps_no_training_form_op_and_times_every_layout():
    model = create_model("mixer_resnet20", num_classes=10, in_chans=1, op="dilated_reparam", kernel_size=5)
    model = _trained_like(model).train()  # as train() hands it over
    x = torch.randn(1, 1, 8, 8)
    deployed, report = deploy_form(model, x, repeats=3, warmup=1)
    assert model.training  # the model as given keeps its flags and its modules
    assert any(isinstance(m, Op) for m in model.modules())
    assert not any(isinstance(m, (Op, nn.BatchNorm2d)) for m in deployed.modules())
    assert not deployed.training
    assert isinstance(report, DeployFormReport)
    assert set(report.timings) == {"nchw", "channels_last"}
    assert report.layout == min(report.timings, key=lambda name: report.timings[name].median_ms)
    assert report.latency_ms > 0 and report.trained.median_ms > 0 and report.trained.repeats == 3
    assert isinstance(deployed, InLayout) == (report.layout == "channels_last")
    assert report.to_dict()["layout"] == report.layout
    torch.testing.assert_close(deployed(x), model.eval()(x), rtol=1e-4, atol=1e-5)


def test_layouts_by_input_rank():
    assert [name for name, _ in layouts_for(torch.zeros(1, 2, 3, 3))] == ["nchw", "channels_last"]
    assert [name for name, _ in layouts_for(torch.zeros(1, 2, 3, 3, 3))] == ["ncdhw", "channels_last_3d"]
    assert [name for name, _ in layouts_for(torch.zeros(1, 2, 3))] == ["contiguous"]


def test_in_layout_puts_weights_and_input_in_the_layout():
    conv = nn.Conv2d(4, 4, 3, padding=1, groups=4)
    x = torch.randn(1, 4, 6, 6)
    expected = conv(x)
    wrapped = InLayout(conv, torch.channels_last, "channels_last")
    assert wrapped.model.weight.is_contiguous(memory_format=torch.channels_last)
    torch.testing.assert_close(wrapped(x), expected)
    assert "layout=channels_last" in repr(wrapped)


def test_a_one_dimensional_model_has_one_layout():
    model = nn.Sequential(nn.Conv1d(2, 4, 3, padding=1), nn.BatchNorm1d(4)).eval()
    deployed, report = deploy_form(model, torch.randn(1, 2, 16), repeats=2, warmup=0)
    assert report.layout == "contiguous" and report.batch_norms_folded == 1


class _WrongReparam(nn.Module):
    """A block whose deploy form is not equal to it: deploy_form must refuse it."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(2, 2, 3, padding=1)

    def forward(self, x):
        return self.conv(x)

    @torch.no_grad()
    def reparameterize(self) -> None:
        self.conv.weight.mul_(2)


def test_a_deploy_form_that_differs_from_the_model_raises():
    with pytest.raises(ValueError, match=r"deploy_form: the deploy form \(nchw\) differs from the model"):
        deploy_form(_WrongReparam(), torch.randn(1, 2, 5, 5), repeats=1)


@pytest.mark.parametrize(
    ("args", "kwargs", "error", "message"),
    [
        (("conv", torch.zeros(1, 2, 4, 4)), {}, TypeError, "deploy_form: model must be an nn.Module, got str"),
        ((nn.Conv2d(2, 2, 1), [1, 2]), {}, TypeError, "deploy_form: example must be a tensor, got list"),
        ((nn.Conv2d(2, 2, 1), torch.zeros(1, 2, 4, 4)), {"repeats": 0}, ValueError, "deploy_form: repeats must be"),
        ((nn.Conv2d(2, 2, 1), torch.zeros(1, 2, 4, 4)), {"warmup": -1}, ValueError, "deploy_form: warmup must be"),
    ],
)
def test_bad_arguments(args, kwargs, error, message):
    with pytest.raises(error, match=message):
        deploy_form(*args, **kwargs)
