"""SGC (S73): the cached K-step propagation equals K explicit GCN propagations without non-linearity; peer: PyG."""

from __future__ import annotations

import pytest
import torch

from convzoo import create_op
from convzoo.core.graph import normalized_adjacency, undirected
from convzoo.ops.sgc import SGConv, propagate


def _graph(nodes: int = 12, edges: int = 30, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    edge_index = undirected(torch.randint(0, nodes, (2, edges), generator=g))
    return torch.randn(nodes, 5, generator=g, dtype=torch.float64), edge_index


def _explicit_gcn_step(x, edge_index):
    """One GCN propagation written from its definition: x_i ← Σ_{j ∈ N(i) ∪ {i}} x_j / √(d̃_i d̃_j)."""
    n = x.shape[0]
    neighbours = [{i} for i in range(n)]
    for s, t in edge_index.T.tolist():
        neighbours[t].add(s)
    degree = [len(nb) for nb in neighbours]
    return torch.stack([sum(x[j] / (degree[i] * degree[j]) ** 0.5 for j in neighbours[i]) for i in range(n)])


@pytest.mark.parametrize("k", [0, 1, 2, 3])
def test_equals_k_explicit_gcn_propagations_then_a_linear_map(k):
    x, edge_index = _graph()
    op = create_op("sgc", 5, 3, k, dim=1).double()
    expected = x
    for _ in range(k):
        expected = _explicit_gcn_step(expected, edge_index)
    torch.testing.assert_close(op.features(x, edge_index), expected)
    torch.testing.assert_close(op(x, edge_index), expected @ op.linear.weight.T + op.linear.bias)


def test_propagation_is_computed_once_and_reused():
    x, edge_index = _graph()
    op = SGConv(5, 3, 2).double()
    first = op.features(x, edge_index)
    assert op.features(x, edge_index) is first  # cached: same tensor, no recomputation
    assert op.features(x.clone(), edge_index) is not first
    op.reset_cache()
    assert SGConv(5, 3, 2, cached=False).double().features(x, edge_index) is not first


def test_normalized_adjacency_is_symmetric_with_self_loops():
    _, edge_index = _graph()
    s = normalized_adjacency(edge_index, 12, dtype=torch.float64).to_dense()
    torch.testing.assert_close(s, s.T)
    assert (s.diagonal() > 0).all()
    eigenvalues = torch.linalg.eigvalsh(s)
    assert eigenvalues.max() <= 1 + 1e-12 and eigenvalues.min() > -1  # the low-pass filter SGC relies on


def test_errors_name_the_op():
    with pytest.raises(ValueError, match="sgc: supports dim in"):
        create_op("sgc", 4, 2)
    with pytest.raises(ValueError, match="sgc: stride must be"):
        create_op("sgc", 4, 2, stride=2, dim=1)
    op = SGConv(5, 3)
    with pytest.raises(ValueError, match=r"sgc: expected node features \(V, C_in=5\), got \(4, 6\)"):
        op(torch.randn(4, 6), torch.zeros(2, 1, dtype=torch.long))
    with pytest.raises(ValueError, match=r"sgc: edge_index holds node ids in \[0, 9\], expected \[0, 4\)"):
        op(torch.randn(4, 5), torch.tensor([[0], [9]]))


@pytest.mark.peer
@pytest.mark.parametrize("k", [1, 2, 3])
def test_peer_torch_geometric_sgconv(k):
    geometric = pytest.importorskip("torch_geometric.nn", reason="torch-geometric is the SGC peer")
    x, edge_index = _graph()
    x = x.float()
    ours = SGConv(5, 3, k)
    theirs = geometric.SGConv(5, 3, K=k, cached=False)
    with torch.no_grad():
        theirs.lin.weight.copy_(ours.linear.weight)
        theirs.lin.bias.copy_(ours.linear.bias)
    torch.testing.assert_close(ours(x, edge_index), theirs(x, edge_index), rtol=1e-5, atol=1e-5)
    assert propagate(x, edge_index, k).shape == (12, 5)
