"""SE (S14) and ECA (S90) channel attention: hand-computed gates, a loop reference, counts, contract, errors."""

from __future__ import annotations

import math

import pytest
import torch

from convzoo import OPS, create_op
from convzoo.ops.attention import eca_kernel_size
from convzoo.testing import check_op_contract, make_contract_op


def _params(op: torch.nn.Module) -> int:
    return sum(p.numel() for p in op.parameters())


def _reference_se(x: torch.Tensor, w1, b1, w2, b2) -> torch.Tensor:
    """SE written with plain tensor ops: spatial mean, matmul, ReLU, sigmoid, broadcast multiply."""
    z = x.flatten(2).mean(-1)  # (N, C)
    h = z @ w1.T
    if b1 is not None:
        h = h + b1
    logits = torch.relu(h) @ w2.T
    if b2 is not None:
        logits = logits + b2
    gate = torch.sigmoid(logits)  # (N, C)
    return x * gate.reshape(*gate.shape, *[1] * (x.dim() - 2))


def _reference_eca(x: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """ECA by explicit loops: per channel, a k-tap sum over neighbouring channel means, zeros off the ends."""
    n, c = x.shape[:2]
    k = weight.numel()
    taps = weight.flatten().tolist()
    out = torch.empty_like(x)
    for i in range(n):
        means = [x[i, ch].sum().item() / x[i, ch].numel() for ch in range(c)]
        for ch in range(c):
            total = 0.0
            for j in range(k):
                src = ch + j - k // 2
                if 0 <= src < c:
                    total += taps[j] * means[src]
            out[i, ch] = x[i, ch] / (1.0 + math.exp(-total))
    return out


# ---------------------------------------------------------------- SE


def test_se_hand_computed_gate():
    # C = 2, r = 2 -> one hidden unit. Channel means z = (1, 3).
    op = create_op("se", 2, 2, reduction=2).double()
    with torch.no_grad():
        op.fc1_weight.copy_(torch.tensor([[1.0, 1.0]]))  # h = relu(1 + 3 + 0) = 4
        op.fc1_bias.zero_()
        op.fc2_weight.copy_(torch.tensor([[0.5], [-0.25]]))  # logits = (2 + 0, -1 + 1) = (2, 0)
        op.fc2_bias.copy_(torch.tensor([0.0, 1.0]))
    x = torch.empty(1, 2, 3, 3, dtype=torch.float64)
    x[0, 0] = torch.tensor([[0.0, 1, 2], [1, 1, 1], [2, 1, 0]])  # mean 1
    x[0, 1] = 3.0  # mean 3
    y = op(x)
    sigmoid_2 = 1.0 / (1.0 + math.exp(-2.0))
    torch.testing.assert_close(y[0, 0], x[0, 0] * sigmoid_2, rtol=0, atol=1e-15)
    torch.testing.assert_close(y[0, 1], torch.full((3, 3), 1.5, dtype=torch.float64), rtol=0, atol=1e-15)


@pytest.mark.parametrize("dim", [1, 2, 3])
@pytest.mark.parametrize("bias", [True, False])
def test_se_matches_plain_formula(dim, bias):
    torch.manual_seed(dim)
    op = create_op("se", 32, 32, dim=dim, bias=bias, reduction=4).double()
    x = torch.randn(3, 32, *(5, 4, 3)[:dim], dtype=torch.float64)
    expected = _reference_se(x, op.fc1_weight, op.fc1_bias, op.fc2_weight, op.fc2_bias)
    torch.testing.assert_close(op(x), expected, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize(("channels", "reduction", "hidden"), [(64, 16, 4), (256, 16, 16), (8, 16, 1), (1, 16, 1)])
def test_se_hidden_width(channels, reduction, hidden):
    op = create_op("se", channels, channels, reduction=reduction)
    assert op.hidden_channels == hidden
    assert tuple(op.fc1_weight.shape) == (hidden, channels)
    assert tuple(op.fc2_weight.shape) == (channels, hidden)


@pytest.mark.parametrize("channels", [64, 256, 2048])
def test_se_parameter_count(channels):
    r = 16
    # the paper's 2·C²/r weights, plus C/r + C biases
    assert _params(create_op("se", channels, channels)) == 2 * channels * channels // r + channels + channels // r
    assert _params(create_op("se", channels, channels, bias=False)) == 2 * channels * channels // r


def test_se_kernel_size_is_unused():
    torch.manual_seed(0)
    a = create_op("se", 16, 16, kernel_size=3)
    torch.manual_seed(0)
    b = create_op("se", 16, 16, kernel_size=(4, 7))  # any positive size, even ones, is accepted
    x = torch.randn(2, 16, 6, 5)
    torch.testing.assert_close(a(x), b(x), rtol=0, atol=0)


def test_se_gradcheck():
    op = create_op("se", 4, 4, reduction=2, dim=1).double()
    x = torch.randn(2, 4, 5, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(op, (x,))


# ---------------------------------------------------------------- ECA


def test_eca_kernel_size_table():
    # |(log2 C + 1) / 2|_odd by hand: t = 3.5, 4, 4.5, 5, 5.5, 6 -> int 3, 4, 4, 5, 5, 6 -> odd 3, 5, 5, 5, 5, 7
    expected = {64: 3, 128: 5, 256: 5, 512: 5, 1024: 5, 2048: 7}
    assert {c: eca_kernel_size(c) for c in expected} == expected
    # small widths: (0 + 1) / 2 = 0.5 -> 0 -> 1; (2 + 1) / 2 = 1.5 -> 1; (3 + 1) / 2 = 2 -> 3
    assert [eca_kernel_size(c) for c in (1, 4, 8)] == [1, 1, 3]
    # other γ, b: (6 + 0) / 1 = 6 -> 7; (6 + 3) / 3 = 3 -> 3
    assert eca_kernel_size(64, gamma=1, b=0) == 7
    assert eca_kernel_size(64, gamma=3, b=3) == 3


def test_eca_adaptive_and_override_kernel():
    assert create_op("eca", 256, 256).k_size == 5
    assert create_op("eca", 2048, 2048).k_size == 7
    assert create_op("eca", 64, 64, gamma=1, b=0).k_size == 7
    assert create_op("eca", 2048, 2048, k_size=3).k_size == 3


def test_eca_resnet50_has_80_parameters():
    # ECA-ResNet-50: one ECA per bottleneck on its 4x-expanded output; stages of 3, 4, 6, 3 blocks.
    stages = [(256, 3), (512, 4), (1024, 6), (2048, 3)]
    # the released model (README: eca_resnet50_k3557) -> the abstract's "80 parameters"
    released_k = (3, 5, 5, 7)
    released = sum(n * _params(create_op("eca", c, c, k_size=k)) for (c, n), k in zip(stages, released_k, strict=True))
    assert released == 80
    # the adaptive rule at the same widths gives k = 5, 5, 5, 7: 15 + 20 + 30 + 21
    assert sum(blocks * _params(create_op("eca", c, c)) for c, blocks in stages) == 86


@pytest.mark.parametrize(("dim", "channels", "k_size"), [(1, 10, 5), (2, 8, None), (2, 4, 7), (3, 6, 3), (2, 5, 1)])
def test_eca_matches_loop_reference(dim, channels, k_size):
    torch.manual_seed(channels)
    op = create_op("eca", channels, channels, dim=dim, k_size=k_size).double()
    with torch.no_grad():
        op.weight.normal_()  # larger taps than the default init, so every neighbour matters
    assert op.weight.numel() == (k_size or eca_kernel_size(channels))
    x = torch.randn(2, channels, *(5, 4, 3)[:dim], dtype=torch.float64)
    torch.testing.assert_close(op(x), _reference_eca(x, op.weight), rtol=1e-12, atol=1e-12)


def test_eca_has_no_bias_and_ignores_kernel_size():
    torch.manual_seed(0)
    a = create_op("eca", 16, 16, kernel_size=3, bias=True)
    torch.manual_seed(0)
    b = create_op("eca", 16, 16, kernel_size=8, bias=False)
    assert [n for n, _ in a.named_parameters()] == ["weight"]
    x = torch.randn(2, 16, 5, 5)
    torch.testing.assert_close(a(x), b(x), rtol=0, atol=0)


def test_eca_gradcheck():
    op = create_op("eca", 6, 6, k_size=3, dim=2).double()
    x = torch.randn(2, 6, 3, 4, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(op, (x,))


# ---------------------------------------------------------------- contract and errors


@pytest.mark.parametrize("name", ["se", "eca"])
def test_registry_metadata(name):
    entry = OPS.get(name)
    assert entry.kind == "attention"
    assert entry.dims == (1, 2, 3)
    assert entry.dynamic and not entry.linear
    assert entry.papers == ({"se": "senet", "eca": "eca-net"}[name],)
    with pytest.raises(NotImplementedError, match=f"{name} is not linear"):
        create_op(name, 8, 8).dense_kernel()


@pytest.mark.parametrize("name", ["se", "eca"])
@pytest.mark.parametrize("dim", [1, 2, 3])
@pytest.mark.parametrize("size", [7, 8, 1])
def test_contract(name, dim, size):
    op = make_contract_op(name, dim=dim)
    check_op_contract(op, (size,) * dim, fresh=make_contract_op(name, dim=dim, seed=1))


@pytest.mark.parametrize("name", ["se", "eca"])
def test_bad_contract_arguments(name):
    with pytest.raises(ValueError, match=rf"^{name}: in_channels must equal out_channels.*got 8 -> 16"):
        create_op(name, 8, 16)
    with pytest.raises(ValueError, match=rf"^{name}: stride must be at most 1, got 2"):
        create_op(name, 8, 8, stride=2)
    op = create_op(name, 8, 8)
    with pytest.raises(ValueError, match=rf"^{name}: expected 8 input channels, got 4"):
        op(torch.randn(1, 4, 5, 5))
    with pytest.raises(ValueError, match=rf"^{name}: expected a 4-d input"):
        op(torch.randn(1, 8, 5))


def test_bad_options():
    with pytest.raises(ValueError, match=r"^se: reduction must be a positive int, got 0"):
        create_op("se", 8, 8, reduction=0)
    with pytest.raises(TypeError, match=r"^se: unknown option\(s\) k_size; it takes reduction"):
        create_op("se", 8, 8, k_size=3)
    with pytest.raises(ValueError, match=r"^eca: k_size must be odd .*got 4"):
        create_op("eca", 8, 8, k_size=4)
    with pytest.raises(ValueError, match=r"^eca: k_size must be a positive int, got 0"):
        create_op("eca", 8, 8, k_size=0)
    with pytest.raises(ValueError, match=r"^eca: gamma must be a positive number, got 0"):
        create_op("eca", 8, 8, gamma=0)
    with pytest.raises(ValueError, match=r"^eca: channels must be a positive int, got 0"):
        eca_kernel_size(0)
