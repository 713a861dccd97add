"""Contract checks for convzoo operators, shipped so users can run them on their own ops.

Each ``check_*`` raises ``AssertionError`` with a message naming the operator and what broke.

>>> from convzoo import create_op
>>> check_op_contract(create_op("conv", 4, 8, dim=1), sizes=(5,))
"""

from __future__ import annotations

import copy
from collections.abc import Sequence

import torch
from torch import Tensor, nn

from convzoo.ops.base import Op, create_op
from convzoo.registry import OPS

__all__ = [
    "contract_channels",
    "make_contract_op",
    "randomize_batchnorm_",
    "check_output_shape",
    "check_gradients",
    "check_sample_independence",
    "check_dtypes",
    "check_channels_last",
    "check_state_dict_roundtrip",
    "check_dense_kernel",
    "check_op_contract",
]


def _name(op: nn.Module) -> str:
    return getattr(type(op), "registry_name", type(op).__name__)


def contract_channels(name: str, dim: int = 2) -> tuple[int, int]:
    """Channels the contract tests use for op ``name``: 8 → 16, 8 → 8 where the op keeps channels, or the
    op class's own ``contract_channels`` where it needs others (e.g. channel sampling needs C_in % C_out == 0)."""
    cls = OPS.get(name).obj
    if getattr(cls, "contract_channels", None) is not None:
        return tuple(cls.contract_channels)
    if getattr(cls, "same_channels", False):
        return 8, 8
    return 8, 16


def randomize_batchnorm_(module: nn.Module, seed: int = 0) -> nn.Module:
    """Give every BatchNorm random running statistics and affine parameters, so eval-mode identities can fail."""
    g = torch.Generator().manual_seed(seed)
    for m in module.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            with torch.no_grad():
                if m.running_mean is not None:
                    m.running_mean.copy_(torch.randn(m.num_features, generator=g) * 0.5)
                    m.running_var.copy_(torch.rand(m.num_features, generator=g) + 0.5)
                if m.affine:
                    m.weight.copy_(torch.rand(m.num_features, generator=g) + 0.5)
                    m.bias.copy_(torch.randn(m.num_features, generator=g) * 0.5)
    return module


def make_contract_op(name: str, *, dim: int = 2, stride: int = 1, kernel_size: int | None = None, seed: int = 0) -> Op:
    """The op ``name`` at the contract test's channels, deterministically initialised.

    ``kernel_size`` defaults to 3, or to the op class's ``contract_kernel_size`` where 3 is not allowed.
    """
    torch.manual_seed(seed)
    c_in, c_out = contract_channels(name, dim)
    if kernel_size is None:
        kernel_size = getattr(OPS.get(name).obj, "contract_kernel_size", 3)
    return create_op(name, c_in, c_out, kernel_size, stride, dim=dim)


def _input(op: Op, size: Sequence[int], batch: int = 2, dtype: torch.dtype = torch.float32) -> Tensor:
    return torch.randn(batch, op.in_channels, *size, dtype=dtype)


def check_output_shape(op: Op, size: Sequence[int], batch: int = 2) -> None:
    x = _input(op, size, batch)
    y = op(x)
    expected = (batch, op.out_channels, *op.output_size(size))
    assert tuple(y.shape) == expected, f"{_name(op)}: input {tuple(x.shape)} gave {tuple(y.shape)}, expected {expected}"


def check_gradients(op: Op, size: Sequence[int]) -> None:
    """The input and every parameter receive a finite gradient."""
    op.train()
    x = _input(op, size).requires_grad_(True)
    # a random projection of the output, so no gradient cancels by symmetry
    y = op(x)
    (y * torch.randn_like(y)).sum().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all(), f"{_name(op)}: input gradient missing or not finite"
    for pname, p in op.named_parameters():
        assert p.grad is not None, f"{_name(op)}: parameter {pname} received no gradient"
        assert torch.isfinite(p.grad).all(), f"{_name(op)}: parameter {pname} has a non-finite gradient"
    op.zero_grad(set_to_none=True)


def check_sample_independence(op: Op, size: Sequence[int], batch: int = 3) -> None:
    """In eval mode each sample's output depends on that sample only."""
    op.eval()
    x = _input(op, size, batch, torch.float64)
    op64 = copy.deepcopy(op).double()
    with torch.no_grad():
        whole = op64(x)
        for i in range(batch):
            alone = op64(x[i : i + 1])
            torch.testing.assert_close(
                whole[i : i + 1], alone, msg=lambda m, i=i: f"{_name(op)}: sample {i} depends on others: {m}"
            )


def check_dtypes(op: Op, size: Sequence[int]) -> None:
    """float64 and bfloat16 forward passes run and agree with float32 within the dtype's precision."""
    op.eval()
    x = _input(op, size)
    with torch.no_grad():
        ref = op(x)
        out64 = copy.deepcopy(op).double()(x.double())
        out16 = copy.deepcopy(op).bfloat16()(x.bfloat16())
    assert out64.dtype == torch.float64, f"{_name(op)}: float64 input gave {out64.dtype}"
    assert out16.dtype == torch.bfloat16, f"{_name(op)}: bfloat16 input gave {out16.dtype}"
    torch.testing.assert_close(out64.float(), ref, rtol=1e-4, atol=1e-4)
    scale = ref.abs().max().item() + 1e-6
    err = (out16.float() - ref).abs().max().item()
    assert err <= 0.1 * scale, f"{_name(op)}: bfloat16 output is off by {err:.3g} (output scale {scale:.3g})"


def check_channels_last(op: Op, size: Sequence[int]) -> None:
    """A channels-last input (2-d and 3-d) gives the same output as a contiguous one, and each keeps its memory
    format: channels-last in, channels-last out (so a network run channels-last stays so); contiguous in,
    contiguous out."""
    if len(size) not in (2, 3):
        return
    op.eval()
    x = _input(op, size)
    fmt = torch.channels_last if len(size) == 2 else torch.channels_last_3d
    layout = "channels-last" if len(size) == 2 else "channels-last-3d"
    with torch.no_grad():
        out_cl = op(x.contiguous(memory_format=fmt))
        out = op(x)
    name = _name(op)
    assert out_cl.is_contiguous(memory_format=fmt), (
        f"{name}: a {layout} input {tuple(x.shape)} gave an output that is not {layout} "
        f"(shape {tuple(out_cl.shape)}, strides {out_cl.stride()})"
    )
    assert out.is_contiguous(), (
        f"{name}: a contiguous input {tuple(x.shape)} gave a non-contiguous output "
        f"(shape {tuple(out.shape)}, strides {out.stride()})"
    )
    torch.testing.assert_close(
        out_cl, out, rtol=1e-5, atol=1e-5, msg=lambda m: f"{name}: a {layout} input changes the output: {m}"
    )


def check_state_dict_roundtrip(op: Op, size: Sequence[int], fresh: Op) -> None:
    """Loading ``op``'s state dict into ``fresh`` (a new instance of the same op) reproduces it."""
    op.eval()
    fresh.load_state_dict(op.state_dict())
    fresh.eval()
    x = _input(op, size)
    with torch.no_grad():
        torch.testing.assert_close(fresh(x), op(x), rtol=0, atol=0)


def check_dense_kernel(op: Op, size: Sequence[int], atol: float = 1e-10) -> None:
    """``F.conv{dim}d(x, **op.dense_kernel().kwargs())`` equals ``op(x)`` in float64 (eval mode)."""
    op64 = copy.deepcopy(op).double().eval()
    x = _input(op, size, dtype=torch.float64)
    with torch.no_grad():
        expected = op64(x)
        got = op64.dense_kernel()(x)
    assert got.shape == expected.shape, (
        f"{_name(op)}: dense kernel gives {tuple(got.shape)}, op {tuple(expected.shape)}"
    )
    err = (got - expected).abs().max().item()
    assert err <= atol, f"{_name(op)}: dense kernel differs from the op by {err:.3g} (> {atol:g})"


def check_op_contract(op: Op, sizes: Sequence[int], fresh: Op | None = None) -> None:
    """Every check above on one op at one spatial size."""
    check_output_shape(op, sizes)
    check_gradients(op, sizes)
    check_sample_independence(op, sizes)
    check_dtypes(op, sizes)
    check_channels_last(op, sizes)
    if fresh is not None:
        check_state_dict_roundtrip(op, sizes, fresh)
