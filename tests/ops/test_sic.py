"""Single intra-channel conv (S5): slow per-channel reference, connectivity, paper counts vs profiler, contract."""

from __future__ import annotations

import itertools
import math

import pytest
import torch
import torch.nn.functional as F
from torch.utils.flop_counter import FlopCounterMode

from convzoo import create_op
from convzoo.ops.standard import DepthwiseSeparableConv
from convzoo.testing import check_dense_kernel, check_op_contract

_CONV = {1: F.conv1d, 2: F.conv2d, 3: F.conv3d}

# (in, out, options): no subdivision; a 2-d grid with interleaved blocks; 1-d groups; a 3-d grid, 8 → 16
CONFIGS = [
    (8, 16, {}),
    (8, 8, {"topology": (2, 4), "block": (2, 2)}),
    (8, 12, {"topology": (8,), "block": (2,), "out_topology": (12,)}),
    (8, 16, {"topology": (2, 2, 2), "block": (2, 1, 2), "out_topology": (2, 4, 2)}),
]


def _coords(index: int, grid: tuple[int, ...]) -> tuple[int, ...]:
    """Row-major grid coordinates of a flat index, last axis fastest."""
    coords = []
    for size in reversed(grid):
        index, c = divmod(index, size)
        coords.append(c)
    return tuple(reversed(coords))


def _inputs_read(op) -> list[list[int]]:
    """For each output channel, the input channels in the same block of the channel grid, ascending."""
    grid, block, out_grid = op.topology, op.block, op.out_topology
    out_block = tuple(e // (d // s) for e, d, s in zip(out_grid, grid, block, strict=True))
    table = []
    for o in range(op.out_channels):
        home = tuple(c // s for c, s in zip(_coords(o, out_grid), out_block, strict=True))
        table.append(
            [
                i
                for i in range(op.in_channels)
                if tuple(c // s for c, s in zip(_coords(i, grid), block, strict=True)) == home
            ]
        )
    return table


def _deconvolve(y: torch.Tensor, kernel: torch.Tensor, step: int, out_size: tuple[int, ...]) -> torch.Tensor:
    """Depthwise transposed conv by scattering: ``out[j·step + t − pad] += y[j] · kernel[t]``, then crop."""
    n, c, *low = y.shape
    pads = [(k - 1) // 2 for k in kernel.shape[1:]]
    out = y.new_zeros(n, c, *out_size)
    for j in itertools.product(*(range(s) for s in low)):
        for t in itertools.product(*(range(k) for k in kernel.shape[1:])):
            target = tuple(ji * step + ti - p for ji, ti, p in zip(j, t, pads, strict=True))
            if all(0 <= v < s for v, s in zip(target, out_size, strict=True)):
                out[(slice(None), slice(None), *target)] += (
                    y[(slice(None), slice(None), *j)] * kernel[(slice(None), *t)]
                )
    return out


def _reference(op, x: torch.Tensor) -> torch.Tensor:
    """The layer the slow way: one conv per input channel, then each output sums its block's channels."""
    dim, b = op.dim, op.bottleneck
    padding = [k // 2 for k in op.kernel_size]
    inner_stride = [s * b for s in op.stride]
    per_channel = [
        _CONV[dim](x[:, i : i + 1], op.depthwise[i : i + 1], stride=inner_stride, padding=padding)
        for i in range(op.in_channels)
    ]
    projection = op.projection.flatten(1)  # (C_out, P)
    outputs = []
    for o, inputs in enumerate(_inputs_read(op)):
        outputs.append(sum(projection[o, p] * per_channel[i] for p, i in enumerate(inputs)))
    y = torch.cat(outputs, dim=1)  # (N, C_out, *L)
    out_size = tuple(-(-s // st) for s, st in zip(x.shape[2:], op.stride, strict=True))
    if b > 1:
        y = _deconvolve(y, op.deconv.flatten(0, 1), b, out_size)
    if op.bias is not None:
        y = y + op.bias.view(1, -1, *[1] * dim)
    return y


@pytest.mark.parametrize(("c_in", "c_out", "options"), CONFIGS)
@pytest.mark.parametrize("bottleneck", [1, 2])
@pytest.mark.parametrize(("dim", "stride", "size"), [(1, 1, 9), (1, 2, 8), (2, 1, 7), (2, 2, 8), (3, 2, 5)])
def test_matches_slow_reference(c_in, c_out, options, bottleneck, dim, stride, size):
    torch.manual_seed(0)
    op = create_op("sic", c_in, c_out, 3, stride, dim=dim, bottleneck=bottleneck, **options).double()
    x = torch.randn(2, c_in, *(size,) * dim, dtype=torch.float64)
    with torch.no_grad():
        torch.testing.assert_close(op(x), _reference(op, x), rtol=1e-12, atol=1e-12)


def test_interleaved_blocks_by_hand():
    # channels on a 2×4 grid   0 1 2 3    cut into 2×2 blocks: {0, 1, 4, 5} and {2, 3, 6, 7}
    #                          4 5 6 7
    op = create_op("sic", 8, 8, topology=(2, 4), block=(2, 2))
    expected = [[0, 1, 4, 5], [0, 1, 4, 5], [2, 3, 6, 7], [2, 3, 6, 7]] * 2
    assert op.neighbours.tolist() == expected


@pytest.mark.parametrize(("c_in", "c_out", "options"), CONFIGS)
def test_dense_kernel_zero_pattern_is_the_connectivity(c_in, c_out, options):
    op = create_op("sic", c_in, c_out, 3, dim=2, **options)
    weight = op.dense_kernel().weight  # (C_out, C_in, 3, 3)
    connected = weight.abs().flatten(2).sum(2) > 0
    expected = torch.zeros(c_out, c_in, dtype=torch.bool)
    for o, inputs in enumerate(_inputs_read(op)):
        expected[o, inputs] = True
    assert torch.equal(connected, expected)
    assert int(connected.sum(1).unique().item()) == op.neighbourhood


@pytest.mark.parametrize(("c_in", "c_out", "options"), CONFIGS)
@pytest.mark.parametrize("dim", [1, 2, 3])
@pytest.mark.parametrize("stride", [1, 2])
def test_dense_kernel_identity(c_in, c_out, options, dim, stride):
    op = create_op("sic", c_in, c_out, 3, stride, dim=dim, **options)
    for size in (7, 8):
        check_dense_kernel(op, (size,) * dim)


def test_bottleneck_has_no_dense_kernel():
    op = create_op("sic", 8, 16, bottleneck=2)
    with pytest.raises(NotImplementedError, match=r"sic with bottleneck=2 is linear but not shift-invariant"):
        op.dense_kernel()


def test_without_subdivision_equals_depthwise_separable():
    torch.manual_seed(0)
    op = create_op("sic", 8, 16, 5, 2, dim=2).double()
    dwsep = DepthwiseSeparableConv(8, 16, 5, 2, dim=2).double()
    with torch.no_grad():
        dwsep.depthwise.copy_(op.depthwise)
        dwsep.pointwise.copy_(op.projection)
        dwsep.bias.copy_(op.bias)
    x = torch.randn(2, 8, 9, 10, dtype=torch.float64)
    torch.testing.assert_close(op(x), dwsep(x), rtol=1e-12, atol=1e-12)


def _paper_params(c_in: int, c_out: int, k: int, dim: int, neighbourhood: int, bottleneck: int, bias: bool) -> int:
    taps = k**dim
    return c_in * taps + c_out * neighbourhood + (c_out * taps if bottleneck > 1 else 0) + (c_out if bias else 0)


@pytest.mark.parametrize(("c_in", "c_out", "options"), CONFIGS)
@pytest.mark.parametrize("bottleneck", [1, 2])
@pytest.mark.parametrize("bias", [True, False])
def test_param_formula_equals_parameters(c_in, c_out, options, bottleneck, bias):
    op = create_op("sic", c_in, c_out, 3, dim=2, bias=bias, bottleneck=bottleneck, **options)
    neighbourhood = math.prod(options.get("block", (c_in,)))
    assert op.param_count == sum(p.numel() for p in op.parameters())
    assert op.param_count == _paper_params(c_in, c_out, 3, 2, neighbourhood, bottleneck, bias)


@pytest.mark.parametrize(("c_in", "c_out", "options"), CONFIGS)
@pytest.mark.parametrize("bottleneck", [1, 2])
@pytest.mark.parametrize(("dim", "stride", "size"), [(1, 2, 9), (2, 1, 8), (2, 2, 7), (3, 1, 5)])
def test_macs_formula_equals_flop_counter(c_in, c_out, options, bottleneck, dim, stride, size):
    op = create_op("sic", c_in, c_out, 3, stride, dim=dim, bottleneck=bottleneck, **options)
    batch, spatial = 3, (size,) * dim
    counter = FlopCounterMode(display=False)
    with counter, torch.no_grad():
        op(torch.randn(batch, c_in, *spatial))
    assert counter.get_total_flops() == 2 * batch * op.macs(spatial)
    # the paper's count: C_in·k^d + C_out·P (+ C_out·k^d) MACs per pixel of the 1/(stride·b) grid
    low_res = math.ceil(size / (stride * bottleneck)) ** dim
    neighbourhood = math.prod(options.get("block", (c_in,)))
    per_pixel = c_in * 3**dim + c_out * neighbourhood + (c_out * 3**dim if bottleneck > 1 else 0)
    assert op.macs(spatial) == per_pixel * low_res


def test_subdivision_divides_projection_cost():
    full = create_op("sic", 64, 64, 3)
    subdivided = create_op("sic", 64, 64, 3, topology=(4, 4, 4), block=(2, 2, 2))
    bottlenecked = create_op("sic", 64, 64, 3, topology=(4, 4, 4), block=(2, 2, 2), bottleneck=2)
    taps = 9 * 64
    assert (full.macs((16, 16)) / 256 - taps) / (subdivided.macs((16, 16)) / 256 - taps) == 8  # 64 / (2·2·2)
    assert bottlenecked.macs((16, 16)) == (taps + 64 * 8 + taps) * 64  # the projection on an 8×8 grid


@pytest.mark.parametrize(("c_in", "c_out", "options"), [CONFIGS[1], CONFIGS[3]])  # the default is in test_contracts
@pytest.mark.parametrize("bottleneck", [1, 2])
@pytest.mark.parametrize(("dim", "stride"), [(1, 1), (2, 2), (3, 1)])
def test_contract(c_in, c_out, options, bottleneck, dim, stride):
    def make(seed):
        torch.manual_seed(seed)
        return create_op("sic", c_in, c_out, 3, stride, dim=dim, bottleneck=bottleneck, **options)

    op = make(0)
    for size in (7, 8, 1):
        check_op_contract(op, (size,) * dim, fresh=make(1))


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"topology": (2, 4)}, r"sic: a topology needs a block \(the neighbourhood shape\), got block=None"),
        ({"block": (2,)}, r"sic: block and out_topology need a topology, got topology=None, block=\(2,\)"),
        ({"topology": (3, 3), "block": (1, 1)}, r"sic: topology \(3, 3\) must hold in_channels = 8 channels, holds 9"),
        (
            {"topology": (2, 4), "block": (2, 3)},
            r"sic: block \(2, 3\) must have one size per axis of topology \(2, 4\)",
        ),
        ({"topology": (2, 4), "block": (2,)}, r"sic: block \(2,\) must have one size per axis of topology \(2, 4\)"),
        ({"topology": (2, 4.0), "block": (2, 2)}, r"sic: topology must be a tuple of positive ints, got \(2, 4.0\)"),
        ({"topology": (2, 4), "block": (0, 2)}, r"sic: block must be a tuple of positive ints, got \(0, 2\)"),
        ({"bottleneck": 0}, r"sic: bottleneck must be a positive int \(1 = off, 2 = halve the resolution\), got 0"),
        ({"bottleneck": 2.0}, r"sic: bottleneck must be a positive int .*, got 2.0"),
    ],
)
def test_bad_options(options, message):
    with pytest.raises(ValueError, match=message):
        create_op("sic", 8, 8, **options)


def test_bad_output_topology():
    with pytest.raises(ValueError, match=r"sic: out_topology is needed when in_channels \(8\) != out_channels \(16\)"):
        create_op("sic", 8, 16, topology=(2, 4), block=(2, 2))
    match = r"sic: out_topology \(8, 2\) must hold out_channels = 16 .* divisible by the blocks per axis \(2, 4\)"
    with pytest.raises(ValueError, match=match):
        create_op("sic", 8, 16, topology=(2, 4), block=(1, 1), out_topology=(8, 2))


def test_bad_input_names_the_op():
    op = create_op("sic", 8, 8, topology=(2, 4), block=(2, 2))
    with pytest.raises(ValueError, match=r"sic: expected 8 input channels, got 6"):
        op(torch.randn(1, 6, 5, 5))
