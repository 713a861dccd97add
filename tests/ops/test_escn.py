"""eSCN (S1): rotation equivariance (float32 and float64), equality with an e3nn SO(3) tensor product through the
paper's weight map, the m truncation, gradients, errors, and e3nn staying out of ``import convzoo``."""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch

from convzoo import create_op
from convzoo.ops import escn as escn_module
from convzoo.ops.escn import (
    ESCNConv,
    default_dtype,
    edge_frame,
    from_irreps_array,
    load_tensor_product_,
    so2_order_index,
    to_irreps_array,
)

o3 = pytest.importorskip("e3nn.o3", reason="eSCN needs e3nn (pip install convzoo[graph])")
pytestmark = pytest.mark.peer


def _irreps(mul: int, lmax: int):
    return o3.Irreps([(mul, (l, 1)) for l in range(lmax + 1)])


def _graph(nodes: int, edges: int, dtype: torch.dtype, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    pos = torch.randn(nodes, 3, generator=g, dtype=dtype)
    src = torch.randint(0, nodes, (edges,), generator=g)
    dst = (src + torch.randint(1, nodes, (edges,), generator=g)) % nodes  # no self-loops
    return pos, torch.stack([src, dst])


@pytest.mark.parametrize(("dtype", "tolerance"), [(torch.float32, 1e-5), (torch.float64, 1e-10)])
def test_rotation_equivariance_at_the_papers_degree(dtype, tolerance):
    """message passing with L = 6, m_max = 2 and radial multipliers commutes with random rotations."""
    torch.manual_seed(0)
    lmax = 6
    conv = ESCNConv(4, 5, lmax, mmax=2, radial_features=3).to(dtype)
    pos, edge_index = _graph(10, 40, dtype)
    x = torch.randn(10, (lmax + 1) ** 2, 4, dtype=dtype)
    vec = pos[edge_index[1]] - pos[edge_index[0]]
    scalars = torch.stack([vec.norm(dim=1), vec.norm(dim=1) ** 2, torch.ones(40, dtype=dtype)], 1)
    y = conv(x, edge_index, vec, scalars)
    scale = y.abs().max().item()
    for seed in range(3):
        torch.manual_seed(seed)
        with default_dtype(torch.float64):  # the test's own rotation exact to float64, then stored in dtype
            rotation = o3.rand_matrix()
            wigner = _irreps(1, lmax).D_from_matrix(rotation).to(dtype)  # (D, D)
        rotation = rotation.to(dtype)
        rotated = conv(wigner @ x, edge_index, vec @ rotation.T, scalars)
        error = (rotated - wigner @ y).abs().max().item() / scale
        assert error <= tolerance, f"relative equivariance error {error:.2e} at {dtype}"


@pytest.mark.parametrize("lmax", [1, 2, 3])
def test_equals_an_e3nn_tensor_product_through_the_papers_weight_map(lmax):
    torch.manual_seed(lmax)
    c_in, c_out, edges = 3, 2, 9
    with default_dtype(torch.float64):  # e3nn's Clebsch-Gordan buffers in float64
        tp = o3.FullyConnectedTensorProduct(_irreps(c_in, lmax), _irreps(1, 2 * lmax), _irreps(c_out, lmax))
    conv = load_tensor_product_(ESCNConv(c_in, c_out, lmax, mmax=lmax).double(), tp)
    x, vec = torch.randn(edges, (lmax + 1) ** 2, c_in, dtype=torch.float64), torch.randn(edges, 3, dtype=torch.float64)
    harmonics = o3.spherical_harmonics(_irreps(1, 2 * lmax), vec, normalize=True, normalization="component")
    reference = from_irreps_array(tp(to_irreps_array(x), harmonics), c_out)  # (E, D, C_out)
    ours = conv.edge_messages(x, edge_frame(vec, lmax))
    torch.testing.assert_close(ours, reference, rtol=1e-10, atol=1e-10)


def test_m_truncation_drops_exactly_the_orders_above_m_max():
    """With m_max < L the op is the tensor product restricted to |m| ≤ m_max in each edge frame."""
    torch.manual_seed(0)
    lmax, c = 3, 2
    with default_dtype(torch.float64):
        tp = o3.FullyConnectedTensorProduct(_irreps(c, lmax), _irreps(1, lmax), _irreps(c, lmax))
    full = load_tensor_product_(ESCNConv(c, c, lmax, mmax=lmax).double(), tp)
    truncated = load_tensor_product_(ESCNConv(c, c, lmax, mmax=1).double(), tp)
    x, vec = torch.randn(5, 16, c, dtype=torch.float64), torch.randn(5, 3, dtype=torch.float64)
    frame = edge_frame(vec, lmax)
    kept = frame.to_frame[:, : truncated.num_kept]  # (E, K, D)
    projector = kept.transpose(1, 2) @ kept  # onto |m| ≤ 1 in each edge's frame
    expected = projector @ full.edge_messages(projector @ x, frame)
    torch.testing.assert_close(truncated.edge_messages(x, frame), expected, rtol=1e-10, atol=1e-10)
    assert (truncated.edge_messages(x, frame) - full.edge_messages(x, frame)).abs().max() > 1e-3


def test_edge_frame_is_e3nns_wigner_d_of_the_edge_rotation():
    vec = torch.randn(50, 3, dtype=torch.float64)
    vec[0] = torch.tensor([0.0, 2.0, 0.0])  # along the polar axis
    vec[1] = torch.tensor([0.0, -1.0, 0.0])
    frame = edge_frame(vec, 5)
    alpha, beta = o3.xyz_to_angles(vec)
    with default_dtype(torch.float64):
        wigner = _irreps(1, 5).D_from_angles(alpha, beta, torch.zeros_like(alpha))  # (E, D, D)
    index, _ = so2_order_index(5, 5)  # the frame keeps D(R_e)ᵀ's rows in order-major order
    torch.testing.assert_close(frame.to_frame, wigner.transpose(1, 2)[:, index], rtol=0, atol=1e-12)
    torch.testing.assert_close(edge_frame(vec, 5, method="e3nn").to_frame, frame.to_frame, rtol=0, atol=1e-12)
    harmonics = o3.spherical_harmonics(
        _irreps(1, 5), vec, True, normalization="component"
    )  # rotated into the frame: only m = 0
    in_frame = (frame.to_frame @ harmonics[..., None])[..., 0]
    torch.testing.assert_close(
        in_frame[:, :6], torch.sqrt(2 * torch.arange(6.0, dtype=torch.float64) + 1).expand(50, 6)
    )


def test_to_and_from_irreps_array_round_trip_and_match_e3nn_layout():
    x = torch.randn(4, 9, 3)
    flat = to_irreps_array(x)
    assert flat.shape == (4, _irreps(3, 2).dim)
    assert torch.equal(flat[:, 3:6], x[:, 1:4, 0])  # first vector channel: e3nn's "3x1e" is channel-major
    assert torch.equal(from_irreps_array(flat, 3), x)


def test_gradients_are_finite_and_match_finite_differences():
    torch.manual_seed(0)
    conv = ESCNConv(2, 2, 2, mmax=1, radial_features=2).double()
    pos, edge_index = _graph(5, 8, torch.float64)
    x = torch.randn(5, 9, 2, dtype=torch.float64, requires_grad=True)
    vec = (pos[edge_index[1]] - pos[edge_index[0]]).requires_grad_(True)
    scalars = torch.randn(8, 2, dtype=torch.float64)
    assert torch.autograd.gradcheck(lambda x, v: conv(x, edge_index, v, scalars), (x, vec))
    conv(x, edge_index, vec, scalars).square().sum().backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in conv.parameters())


def test_create_op_and_a_shared_frame():
    op = create_op("escn", 4, 8, dim=3)  # kernel_size is the degree L: 3 by default
    assert op.lmax == 3 and op.mmax == 2
    pos, edge_index = _graph(6, 12, torch.float32)
    vec = pos[edge_index[1]] - pos[edge_index[0]]
    x = torch.randn(6, 16, 4)
    torch.testing.assert_close(op(x, edge_index, vec), op(x, edge_index, frame=op.frame(vec)))
    assert op(x, edge_index, vec).shape == (6, 16, 8)


def test_errors_name_the_op():
    with pytest.raises(ValueError, match="escn: stride must be"):
        create_op("escn", 4, 4, stride=2, dim=3)
    with pytest.raises(ValueError, match="escn: supports dim in"):
        create_op("escn", 4, 4)
    op = ESCNConv(2, 2, 1)
    with pytest.raises(ValueError, match=r"escn: expected node features \(V, \(L\+1\)²=4, C_in=2\), got \(3, 9, 2\)"):
        op(torch.randn(3, 9, 2), torch.zeros(2, 1, dtype=torch.long), torch.randn(1, 3))
    with pytest.raises(ValueError, match="escn: an edge vector has length 0"):
        op(torch.randn(3, 4, 2), torch.zeros(2, 1, dtype=torch.long), torch.zeros(1, 3))
    with pytest.raises(ValueError, match="escn: needs edge_scalars"):
        ESCNConv(2, 2, 1, radial_features=2)(torch.randn(3, 4, 2), torch.tensor([[0], [1]]), torch.ones(1, 3))


def test_missing_e3nn_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "e3nn", None)
    with pytest.raises(ImportError, match=r"convzoo\[graph\]"):
        escn_module.require_e3nn()


def test_import_convzoo_and_the_registries_do_not_import_the_graph_extra():
    code = (
        "import sys, convzoo; from convzoo.registry import MODELS, DATASETS, SUITES\n"
        "convzoo.OPS.names(); MODELS.names(); DATASETS.names(); SUITES.names()\n"
        "loaded = {'e3nn', 'torch_harmonics', 'torch_geometric'} & set(sys.modules)\n"
        "assert not loaded, loaded"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
