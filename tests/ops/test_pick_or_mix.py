"""Pick-or-Mix (S93): naive per-pixel reference, threshold identities, gradients, contract at C_in % C_out == 0."""

from __future__ import annotations

import itertools
import math

import pytest
import torch

from convzoo import OPS, create_op
from convzoo.testing import check_op_contract, contract_channels, make_contract_op


def _reference(op, x: torch.Tensor) -> tuple[torch.Tensor, list[list[str]]]:
    """PiX one sample, one output channel and one pixel at a time, in Python floats; also the modes used."""
    n, c_in, *size = x.shape
    c_out, zeta = op.out_channels, op.in_channels // op.out_channels
    out_size = [math.ceil(s / st) for s, st in zip(size, op.stride, strict=True)]
    out = torch.zeros(n, c_out, *out_size, dtype=torch.float64)
    pixels = math.prod(size)
    modes = []
    for b in range(n):
        context = [x[b, i].abs().sum().item() / pixels for i in range(c_in)]
        modes.append([])
        for o in range(c_out):
            logit = sum(op.gate_weight[o, i].item() * context[i] for i in range(c_in))
            if op.gate_bias is not None:
                logit += op.gate_bias[o].item()
            p = 1.0 / (1.0 + math.exp(-logit))
            pick = p < op.threshold
            modes[b].append("pick" if pick else "mix")
            for position in itertools.product(*(range(s) for s in out_size)):
                source = tuple(j * st for j, st in zip(position, op.stride, strict=True))
                values = [x[(b, o * zeta + j, *source)].item() for j in range(zeta)]
                out[(b, o, *position)] = p * (max(values) if pick else sum(values) / zeta)
    return out, modes


@pytest.mark.parametrize(
    ("c_in", "c_out", "dim", "stride", "size"),
    [(16, 4, 2, 1, 5), (16, 4, 2, 2, 7), (12, 4, 1, 2, 9), (8, 8, 1, 1, 6), (6, 2, 3, 2, 4), (16, 8, 2, 1, 1)],
)
@pytest.mark.parametrize("bias", [True, False])
def test_matches_per_pixel_reference(c_in, c_out, dim, stride, size, bias):
    torch.manual_seed(0)
    op = create_op("pix", c_in, c_out, 1, stride, dim=dim, bias=bias).double()
    with torch.no_grad():
        op.gate_weight.mul_(3.0)  # spread p away from τ so both modes occur
        if bias:
            op.gate_bias.copy_(torch.linspace(-2.0, 2.0, c_out))
    x = torch.randn(2, c_in, *(size,) * dim, dtype=torch.float64)
    expected, modes = _reference(op, x)
    with torch.no_grad():
        torch.testing.assert_close(op(x), expected, rtol=1e-12, atol=1e-12)
    if c_out >= 4:
        assert {"pick", "mix"} <= {m for row in modes for m in row}, f"only {modes} exercised"


def test_threshold_zero_always_mixes_and_one_always_picks():
    torch.manual_seed(0)
    x = torch.randn(2, 12, 5, 6, dtype=torch.float64)
    mixer = create_op("pix", 12, 4, 1, threshold=0.0).double()
    picker = create_op("pix", 12, 4, 1, threshold=1.0).double()
    picker.load_state_dict(mixer.state_dict())
    context = x.abs().mean(dim=(2, 3))  # (N, 12)
    p = torch.sigmoid(context @ mixer.gate_weight.T + mixer.gate_bias)[:, :, None, None]  # (N, 4, 1, 1)
    subsets = x.view(2, 4, 3, 5, 6)  # (N, C_out, ζ, H, W): contiguous subsets of ζ = 3 channels
    with torch.no_grad():
        torch.testing.assert_close(mixer(x), p * subsets.mean(dim=2), rtol=1e-12, atol=1e-12)
        torch.testing.assert_close(picker(x), p * subsets.max(dim=2).values, rtol=1e-12, atol=1e-12)


def test_official_gate_on_non_negative_input():
    # the official module: sigmoid(1×1 conv without bias of the global average pool) on post-ReLU input
    torch.manual_seed(0)
    op = create_op("pix", 8, 4, 1, bias=False).double()
    x = torch.randn(3, 8, 6, 6, dtype=torch.float64).relu()
    pooled = torch.nn.functional.adaptive_avg_pool2d(x, 1)  # (N, 8, 1, 1)
    p = torch.sigmoid(torch.nn.functional.conv2d(pooled, op.gate_weight[:, :, None, None]))  # (N, 4, 1, 1)
    subsets = x.view(3, 4, 2, 6, 6)
    expected = torch.where(p < 0.5, subsets.max(dim=2).values, subsets.mean(dim=2)) * p
    with torch.no_grad():
        torch.testing.assert_close(op(x), expected, rtol=1e-12, atol=1e-12)


def test_stride_keeps_every_stride_th_pixel():
    torch.manual_seed(0)
    dense = create_op("pix", 16, 8, 1, 1, dim=2)
    strided = create_op("pix", 16, 8, 1, 2, dim=2)
    strided.load_state_dict(dense.state_dict())
    x = torch.randn(2, 16, 7, 8)
    with torch.no_grad():
        torch.testing.assert_close(strided(x), dense(x)[:, :, ::2, ::2], rtol=0, atol=0)


def test_pick_routes_the_gradient_to_the_chosen_channel_only():
    torch.manual_seed(0)
    op = create_op("pix", 8, 2, 1, threshold=1.0)  # always pick
    with torch.no_grad():
        op.gate_weight.zero_()  # p = sigmoid(β) no longer depends on x: the input gradient is the fusion's alone
    x = torch.randn(1, 8, 4, 4, requires_grad=True)
    op(x).sum().backward()
    nonzero = (x.grad != 0).view(2, 4, 4, 4).sum(dim=1)  # per subset and pixel: how many channels got gradient
    assert torch.equal(nonzero, torch.ones(2, 4, 4, dtype=torch.long))
    assert op.gate_weight.grad is not None and op.gate_weight.grad.abs().sum() > 0
    assert op.gate_bias.grad is not None and op.gate_bias.grad.abs().sum() > 0


def test_contract_channels_and_kernel_of_the_registry():
    assert contract_channels("pix") == (16, 8)
    assert make_contract_op("pix").kernel_size == (1, 1)
    assert OPS.get("pix").dynamic and not OPS.get("pix").linear


@pytest.mark.parametrize(("c_in", "c_out"), [(16, 8), (12, 4)])
@pytest.mark.parametrize(("dim", "stride"), list(itertools.product((1, 2, 3), (1, 2))))
def test_contract(c_in, c_out, dim, stride):
    def make(seed):
        torch.manual_seed(seed)
        return create_op("pix", c_in, c_out, 1, stride, dim=dim)

    op = make(0)
    for size in (7, 8, 1):
        check_op_contract(op, (size,) * dim, fresh=make(1))


def test_not_linear_has_no_dense_kernel():
    with pytest.raises(NotImplementedError, match=r"pix is not linear shift-invariant"):
        create_op("pix", 16, 8, 1).dense_kernel()


@pytest.mark.parametrize(
    ("args", "options", "message"),
    [
        (
            (16, 8, 3),
            {},
            r"pix: kernel_size must be 1 \(Pick-or-Mix replaces a 1×1 squeeze and mixes no pixels\), got 3",
        ),
        ((16, 8), {}, r"pix: kernel_size must be 1 .*, got 3"),
        ((16, 8, (1, 3)), {}, r"pix: kernel_size must be 1 .*, got \(1, 3\)"),
        ((8, 16, 1), {}, r"pix: in_channels \(8\) must be a multiple of out_channels \(16\)"),
        ((12, 8, 1), {}, r"pix: in_channels \(12\) must be a multiple of out_channels \(8\)"),
        ((16, 8, 1), {"threshold": 1.5}, r"pix: threshold must be a probability in \[0, 1\], got 1.5"),
        ((16, 8, 1), {"threshold": "half"}, r"pix: threshold must be a probability in \[0, 1\], got 'half'"),
    ],
)
def test_bad_arguments(args, options, message):
    with pytest.raises(ValueError, match=message):
        create_op("pix", *args, **options)


def test_bad_input_names_the_op():
    op = create_op("pix", 16, 8, 1)
    with pytest.raises(ValueError, match=r"pix: expected 16 input channels, got 8"):
        op(torch.randn(1, 8, 5, 5))
