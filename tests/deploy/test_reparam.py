"""reparameterize: every registered linear op, and every registered model containing one, becomes its deploy
form (single convs) and computes the same function in eval mode."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from convzoo.deploy import reparameterize, reparameterize_with_report
from convzoo.models import create_model
from convzoo.ops.base import Op
from convzoo.registry import MODELS, OPS
from convzoo.testing import make_contract_op, randomize_batchnorm_

LINEAR_OPS = [e.name for e in OPS.entries() if e.linear]


def _has_linear_op(model: nn.Module) -> bool:
    return any(isinstance(m, Op) and OPS.get(type(m).registry_name).linear for m in model.modules())


def _small_model(name: str) -> nn.Module:
    torch.manual_seed(0)
    return create_model(name, **MODELS.get(name).info.test_cfg, num_classes=10)


MODELS_WITH_ONE = [
    e.name
    for e in MODELS.entries()
    if e.kind == "classify" and e.info.test_cfg is not None and _has_linear_op(_small_model(e.name))
]


def _assert_close(expected, got, rtol=1e-5):
    assert (got - expected).abs().max().item() <= rtol * expected.abs().max().item()


def test_some_models_contain_linear_ops():
    assert {"unireplknet_t", "inceptionnext_tiny"} <= set(MODELS_WITH_ONE)


@pytest.mark.parametrize("name", LINEAR_OPS)
@pytest.mark.parametrize("stride", [1, 2])
def test_every_linear_op_becomes_one_conv(name, stride):
    entry = OPS.get(name)
    if entry.obj.max_stride is not None and stride > entry.obj.max_stride:
        pytest.skip(f"{name} takes stride ≤ {entry.obj.max_stride}")
    dim = 2 if 2 in entry.dims else entry.dims[0]
    op = randomize_batchnorm_(make_contract_op(name, dim=dim, stride=stride)).eval()
    model = nn.Sequential(op, nn.ReLU())
    x = torch.randn(2, op.in_channels, *([7] * dim))
    deployed, report = reparameterize_with_report(model)
    assert report.merged == {"0": name}
    assert type(deployed[0]).__name__ == f"Conv{dim}d" and not _has_linear_op(deployed)
    with torch.no_grad():
        _assert_close(model(x), deployed(x))


@pytest.mark.parametrize("name", MODELS_WITH_ONE)
def test_every_model_with_a_linear_op_keeps_its_output(name):
    model = randomize_batchnorm_(_small_model(name)).eval()
    size = MODELS.get(name).info.test_size
    x = torch.randn(2, MODELS.get(name).info.input_size[0], size, size)
    deployed = reparameterize(model)
    assert not _has_linear_op(deployed) and _has_linear_op(model)  # the original is left as it was
    with torch.no_grad():
        _assert_close(model(x), deployed(x))


def test_a_model_reparameterize_method_is_used():
    model = randomize_batchnorm_(_small_model("unireplknet_a")).eval()
    _, report = reparameterize_with_report(model)
    assert report.blocks == ["(model)"] and report.merged == {}
