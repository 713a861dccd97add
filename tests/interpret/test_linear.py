"""S10 linear interpreter: A(x)·x + b(x) reproduces the network's output, bias included."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from convzoo import create_model, create_op
from convzoo.interpret.linear import linear_contributions, linear_interpreter


def _randomise(model: nn.Module) -> nn.Module:
    """Non-zero biases and norm affines, so the bias term is tested and not just zero."""
    generator = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if p.dim() == 1:
                p.copy_(torch.randn(p.shape, generator=generator) * 0.2 + (0.5 if name.endswith("weight") else 0.0))
    return model.eval()


def _check(model: nn.Module, x: torch.Tensor, atol: float = 1e-5, linear_part: float = 1e-3):
    interpreter = linear_interpreter(model, x)
    with torch.no_grad():
        expected = model(x)
    assert torch.allclose(interpreter.apply(x) + interpreter.bias, expected, atol=atol)
    assert interpreter.bias.abs().max() > 1e-3  # the bias really takes part
    assert interpreter.apply(x).abs().max() > linear_part  # and so does the linear part
    # linear: A(2v + w) = 2Av + Aw for inputs other than x
    v, w = torch.randn_like(x), torch.randn_like(x)
    assert torch.allclose(interpreter.apply(2 * v + w), 2 * interpreter.apply(v) + interpreter.apply(w), atol=atol)
    assert interpreter.frozen_unknown == []
    return interpreter


def test_resnet_map_is_the_jacobian_and_reproduces_the_output():
    torch.manual_seed(0)
    model = _randomise(create_model("resnet20", num_classes=10, layers=(1, 1, 1)))
    x = torch.randn(1, 3, 16, 16)
    interpreter = _check(model, x)
    # for a ReLU network the interpreter is exactly the local Jacobian
    jacobian = torch.autograd.functional.jacobian(model, x).reshape(10, -1)
    assert torch.allclose(interpreter.matrix(), jacobian, atol=1e-6)
    # the transpose is the adjoint: <A v, u> = <v, Aᵀ u>
    v, u = torch.randn_like(x), torch.randn(1, 10)
    assert torch.allclose((interpreter.apply(v) * u).sum(), (v * interpreter.transpose(u)).sum(), atol=1e-5)


def test_convnext_gelu_and_layernorm_are_frozen_into_an_affine_map():
    torch.manual_seed(0)
    model = _randomise(create_model("convnext_tiny", num_classes=10, depths=(1, 1, 1, 1), dims=(8, 16, 32, 64)))
    interpreter = _check(model, torch.randn(2, 3, 32, 32))
    names = {name for name, _ in interpreter.record}
    assert {"gelu", "layer_norm"} <= names


def test_gated_ops_gnconv_and_squeeze_excite():
    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Conv2d(3, 16, 3, padding=1),
        create_op("gnconv", 16, 16, order=2),
        nn.MaxPool2d(2),
        create_op("se", 16, 16),
        nn.Flatten(),
        nn.Linear(16 * 8 * 8, 5),
    )
    interpreter = _check(_randomise(model), torch.randn(2, 3, 16, 16), atol=1e-6, linear_part=1e-4)
    names = [name for name, _ in interpreter.record]
    assert names.count("mul") == 2 and "sigmoid" in names and "max_pool2d" in names


@pytest.mark.parametrize("act", [nn.SiLU, nn.Hardswish, lambda: nn.LeakyReLU(0.1), nn.ELU, nn.ReLU6, nn.Mish])
def test_every_gate_activation_and_group_norm(act):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(2, 8, 3, padding=1), nn.GroupNorm(2, 8), act(), nn.Flatten(), nn.Linear(8 * 36, 3))
    _check(_randomise(model), torch.randn(2, 2, 6, 6) * 3)


def test_functional_relu_and_in_place_relu_are_seen():
    class Functional(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv = nn.Conv2d(1, 4, 3)
            self.act = nn.ReLU(inplace=True)
            self.fc = nn.Linear(4 * 16, 2)

        def forward(self, x):
            return self.fc(torch.relu(self.act(self.conv(x)) - 0.1).flatten(1))

    model = _randomise(Functional())
    interpreter = _check(model, torch.randn(1, 1, 6, 6))
    assert [name for name, _ in interpreter.record] == ["relu", "relu"]


def test_contributions_sum_to_the_logit_and_errors():
    torch.manual_seed(0)
    model = _randomise(create_model("resnet20", num_classes=10, layers=(1, 1, 1)))
    x = torch.randn(1, 3, 16, 16)
    row, contributions, bias = linear_contributions(model, x, target=3)
    assert row.shape == x.shape
    assert torch.isclose(contributions.sum() + bias, model(x)[0, 3], atol=1e-5)
    with pytest.raises(ValueError, match=r"expected an input of shape \(1, 3, 16, 16\)"):
        linear_interpreter(model, x).apply(torch.randn(2, 3, 16, 16))


def test_unknown_non_linearity_is_frozen_and_named():
    class Odd(nn.Module):
        def forward(self, x):
            return torch.atan(x) * 2 + x

    interpreter = linear_interpreter(Odd(), torch.randn(3))
    assert interpreter.frozen_unknown == ["atan"]
    assert torch.allclose(interpreter.apply(interpreter.x0) + interpreter.bias, Odd()(interpreter.x0))
