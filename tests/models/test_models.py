"""Registry-wide model contract: published parameter counts, forward/backward, features_only, reset_classifier."""

from __future__ import annotations

import pytest
import torch

from convzoo.models import create_model
from convzoo.models.counting import count_params, meta_param_count
from convzoo.registry import MODELS, OPS

CLASSIFIERS = [e.name for e in MODELS.entries() if e.kind == "classify"]


@pytest.mark.parametrize("name", CLASSIFIERS)
def test_published_parameter_count(name):
    entry = MODELS.get(name)
    published = entry.info.params
    counted = meta_param_count(name)
    if published is None:  # a count that could not be matched says so, with this build's count
        assert entry.info.params_source.startswith("NOT matched") and f"{counted:,}" in entry.info.params_source
        return
    assert abs(counted - published) <= 0.005 * published, (
        f"{name}: {counted:,} parameters, published {published:,} ({entry.info.params_source})"
    )


def _small(name: str, **kwargs):
    entry = MODELS.get(name)
    torch.manual_seed(0)
    model = create_model(name, **entry.info.test_cfg, **kwargs)
    size = entry.info.test_size
    channels = entry.info.input_size[0]
    x = torch.randn(2, channels, *([size] * (len(entry.info.input_size) - 1)))
    return model, x


@pytest.mark.parametrize("name", CLASSIFIERS)
def test_forward_backward_every_parameter_gets_a_gradient(name):
    model, x = _small(name, num_classes=7)
    out = model(x)
    assert out.shape == (2, 7)
    (out * torch.randn_like(out)).sum().backward()
    missing = [n for n, p in model.named_parameters() if p.requires_grad and p.grad is None]
    assert not missing, f"{name}: no gradient for {missing[:5]}"


@pytest.mark.parametrize("name", CLASSIFIERS)
def test_features_only_strides_and_channels(name):
    model, x = _small(name, features_only=True)
    features = model(x)
    assert len(features) == len(model.feature_info)
    size = x.shape[-1]
    for feature, info in zip(features, model.feature_info, strict=True):
        assert feature.shape[1] == info.channels, f"{name}: {info.module} has {feature.shape[1]} channels, said {info}"
        expected = -(-size // info.reduction)
        assert feature.shape[-1] == expected, f"{name}: {info.module} is {feature.shape[-1]} wide, expected {expected}"
    heads = [n for n, _ in model.named_parameters() if ".head." in f".{n}"]
    assert not heads, f"{name}: features_only keeps head parameters {heads[:3]}"


@pytest.mark.parametrize("name", CLASSIFIERS)
def test_reset_classifier(name):
    model, x = _small(name)
    model.reset_classifier(3)
    assert model(x).shape == (2, 3)
    model.reset_classifier(0)
    pooled = model(x)
    assert pooled.dim() == 2 and pooled.shape[0] == 2
    assert pooled.shape[1] == model.forward_head(model.forward_features(x), pre_logits=True).shape[1]


GRID_OPS = [e.name for e in OPS.entries() if e.kind == "grid"]


@pytest.mark.parametrize("op", GRID_OPS)
def test_resnet18_with_every_grid_op(op):
    try:
        model = create_model("resnet18", op=op, num_classes=5)
    except ValueError as error:
        assert str(error).startswith(f"resnet18: op '{op}' cannot replace the conv at "), error
        return
    out = model(torch.randn(2, 3, 32, 32))
    assert out.shape == (2, 5)
    out.sum().backward()
    assert any(type(m).__module__.startswith("convzoo.ops") for m in model.modules())


def test_create_model_errors():
    with pytest.raises(ValueError, match=r"unknown model 'resnet19'; did you mean"):
        create_model("resnet19")
    with pytest.raises(TypeError, match=r"resnet18: unknown config field\(s\) depth; its config has"):
        create_model("resnet18", depth=3)
    with pytest.raises(ValueError, match=r"unknown op 'shfit'"):
        create_model("resnet18", op="shfit")
    with pytest.raises(ValueError, match=r"resnet18: num_classes must be an int ≥ 0, got -1"):
        create_model("resnet18", num_classes=-1)


def test_cifar_models_default_to_ten_classes():
    model = create_model("resnet20")
    assert model(torch.randn(1, 3, 32, 32)).shape == (1, 10)
    assert count_params(model) == MODELS.get("resnet20").info.params


def test_every_kind_of_model_names_an_unknown_config_field():
    with pytest.raises(TypeError, match=r"bytenet: unknown config field\(s\) depth; its config has"):
        create_model("bytenet", depth=3)
    with pytest.raises(TypeError, match=r"carn: unknown config field\(s\) depth; its config has"):
        create_model("carn", depth=3)
