"""Tune mode (S49): the folded-on-the-fly ConvBN equals the eval-mode pair in output and gradients, saves less."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

from convzoo.deploy import TuneConvBN, find_conv_bn_pairs, saved_tensor_bytes, tune_mode
from convzoo.models import create_model
from convzoo.registry import MODELS
from convzoo.testing import randomize_batchnorm_


def _eval_bn(model: nn.Module) -> nn.Module:
    """Training mode with BatchNorms in eval mode: the transfer-learning setting Tune mode reproduces."""
    model.train()
    for module in model.modules():
        if isinstance(module, nn.modules.batchnorm._BatchNorm):
            module.eval()
    return model


@pytest.mark.parametrize(
    "layer, bn, shape",
    [
        (nn.Conv2d(3, 5, 3, stride=2, padding=1), nn.BatchNorm2d(5), (2, 3, 7, 7)),
        (nn.Conv1d(3, 4, 5, padding=2, bias=False), nn.BatchNorm1d(4), (2, 3, 9)),
        (nn.Linear(6, 4), nn.BatchNorm1d(4), (5, 6)),
    ],
)
def test_output_and_every_gradient_equal_the_eval_mode_pair(layer, bn, shape):
    torch.manual_seed(0)
    pair = _eval_bn(randomize_batchnorm_(nn.Sequential(layer, bn)).double())
    tuned = TuneConvBN(*copy.deepcopy(pair)).train()
    x = torch.randn(*shape, dtype=torch.float64, requires_grad=True)
    x2 = x.detach().clone().requires_grad_()
    weight = torch.randn_like(pair(x))
    (pair(x) * weight).sum().backward()
    (tuned(x2) * weight).sum().backward()
    torch.testing.assert_close(x2.grad, x.grad)
    for name, param in pair.named_parameters():
        tuned_name = name.replace("0.", "conv.", 1).replace("1.", "bn.", 1)
        torch.testing.assert_close(dict(tuned.named_parameters())[tuned_name].grad, param.grad, msg=name)


def test_bn_statistics_stay_frozen_in_training_mode():
    tuned = TuneConvBN(nn.Conv2d(2, 3, 3, padding=1), nn.BatchNorm2d(3)).train()
    before = tuned.bn.running_mean.clone()
    tuned(torch.randn(4, 2, 5, 5) + 3.0)
    assert not tuned.bn.training and torch.equal(tuned.bn.running_mean, before)


def test_rejects_other_layers():
    with pytest.raises(TypeError, match="TuneConvBN: expected an nn.Conv1d/2d/3d or nn.Linear, got ReLU"):
        TuneConvBN(nn.ReLU(), nn.BatchNorm2d(3))


def test_resnet_gradients_match_eval_mode_bn_and_activations_shrink():
    entry = MODELS.get("resnet20")
    torch.manual_seed(0)
    model = _eval_bn(randomize_batchnorm_(create_model("resnet20", **entry.info.test_cfg, num_classes=10)))
    x = torch.randn(4, 3, 32, 32)
    pairs = find_conv_bn_pairs(model, x)
    tuned = tune_mode(model, x).train()
    assert sum(isinstance(m, TuneConvBN) for m in tuned.modules()) == len(pairs) > 0
    target = torch.randint(0, 10, (4,))
    nn.functional.cross_entropy(model(x), target).backward()
    nn.functional.cross_entropy(tuned(x), target).backward()
    for pair in pairs:
        original = model.get_submodule(pair.producer).weight.grad
        folded = tuned.get_submodule(pair.producer).conv.weight.grad
        # float32 sums in another order: equal to 1e-4 of the gradient's scale
        assert (folded - original).abs().max() <= 1e-4 * original.abs().max(), pair
    # the conv outputs are no longer kept for the BN's backward
    assert saved_tensor_bytes(tuned, x) < 0.8 * saved_tensor_bytes(model, x)
