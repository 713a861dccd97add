"""Registry-wide operator contract: every op × the dims it claims × stride 1/2 × odd, even and size-1 inputs."""

from __future__ import annotations

import itertools

import pytest
import torch

from convzoo import OPS, create_op
from convzoo.testing import (
    check_channels_last,
    check_dense_kernel,
    check_dtypes,
    check_gradients,
    check_output_shape,
    check_sample_independence,
    check_state_dict_roundtrip,
    contract_channels,
    make_contract_op,
    randomize_batchnorm_,
)

SIZES = (7, 8, 1)
GRID_KINDS = ("grid", "attention", "sequence")  # the (N, C, *S) contract; graph, equivariant and set ops test their own
GRID_OPS = [e.name for e in OPS.entries() if e.kind in GRID_KINDS]


def _cases(linear_only: bool = False):
    for entry in map(OPS.get, GRID_OPS):
        if linear_only and not entry.linear:
            continue
        for dim, stride in itertools.product(entry.dims, (1, 2)):
            if stride > (getattr(entry.obj, "max_stride", None) or stride):
                continue
            yield pytest.param(entry.name, dim, stride, id=f"{entry.name}-{dim}d-s{stride}")


def _op(name: str, dim: int, stride: int, seed: int = 0):
    return randomize_batchnorm_(make_contract_op(name, dim=dim, stride=stride, seed=seed), seed)


@pytest.mark.parametrize(("name", "dim", "stride"), list(_cases()))
def test_contract(name, dim, stride):
    op = _op(name, dim, stride)
    for size in SIZES:
        sizes = (size,) * dim
        check_output_shape(op, sizes)
        check_gradients(op, sizes)
        check_sample_independence(op, sizes)
    sizes = (SIZES[0],) * dim
    check_dtypes(op, sizes)
    check_channels_last(op, sizes)
    check_state_dict_roundtrip(op, sizes, _op(name, dim, stride, seed=1))


@pytest.mark.parametrize(("name", "dim", "stride"), list(_cases(linear_only=True)))
def test_dense_kernel_identity(name, dim, stride):
    op = _op(name, dim, stride)
    for size in (7, 8):
        check_dense_kernel(op, (size,) * dim, atol=1e-10)


@pytest.mark.parametrize("name", GRID_OPS)
def test_registration(name):
    entry = OPS.get(name)
    assert entry.summary and entry.obj.__doc__, f"{name} needs a docstring naming its paper"
    op = make_contract_op(name, dim=entry.dims[0])
    assert type(op).registry_name == name
    if entry.linear:
        assert op.dense_kernel().weight.dim() == entry.dims[0] + 2  # a linear op must provide its dense kernel
    else:
        with pytest.raises(NotImplementedError, match=name):
            op.dense_kernel()


@pytest.mark.parametrize("name", [e.name for e in OPS.entries() if e.kind == "attention"])
def test_attention_ops_refuse_stride_and_channel_change(name):
    with pytest.raises(ValueError, match=rf"{name}: stride must be at most 1"):
        create_op(name, 8, 8, stride=2)
    with pytest.raises(ValueError, match=rf"{name}: in_channels must equal out_channels"):
        create_op(name, 8, 16)


@pytest.mark.parametrize("name", GRID_OPS)
def test_bad_input_rank_and_channels(name):
    entry = OPS.get(name)
    op = make_contract_op(name, dim=entry.dims[0])
    c_in, _ = contract_channels(name, entry.dims[0])
    spatial = (5,) * entry.dims[0]
    with pytest.raises(ValueError, match=rf"{name}: expected {c_in} input channels, got {c_in + 1}"):
        op(torch.randn(1, c_in + 1, *spatial))
    with pytest.raises(ValueError, match=rf"{name}: expected a {entry.dims[0] + 2}-d input"):
        op(torch.randn(1, c_in, *spatial, 5))


@pytest.mark.parametrize("name", GRID_OPS)
def test_unknown_option_names_the_op(name):
    with pytest.raises(TypeError, match=rf"{name}: unknown option\(s\) no_such_option; it takes"):
        create_op(name, 8, 8, dim=OPS.get(name).dims[0], no_such_option=1)
