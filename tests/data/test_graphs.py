"""Graph data: networkx's karate club (embedded) and Planetoid raw folders (tiny fakes), with clear errors."""

from __future__ import annotations

import pickle
from collections import defaultdict

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from convzoo.data.base import load_dataset
from convzoo.data.graphs import karate_club, load_graph


def test_karate_club_is_zacharys_graph_with_a_fixed_split():
    graph = load_dataset("karate")
    assert graph.num_nodes == 34 and graph.edge_index.shape == (2, 156)  # 78 ties, both directions
    assert graph.y.bincount().tolist() == [17, 17] and graph.num_classes == 2
    assert int(graph.train_mask.sum()) == 8 and not (graph.train_mask & graph.test_mask).any()
    assert torch.equal(graph.train_mask, karate_club().train_mask)  # the split is fixed
    with pytest.raises(ValueError, match="karate: is bundled with networkx and takes no data folder"):
        karate_club(root="/tmp")


def _write_planetoid(folder, name="cora", *, test_order=(4, 3), features=3, classes=2):
    """A 5-node Planetoid folder: 2 training nodes (x, y), allx for nodes 0-2, test nodes listed out of order."""
    allx = sp.csr_matrix(np.eye(3, features, dtype=np.float32))
    parts = {
        "x": allx[:2],
        "y": np.eye(classes, dtype=np.int64)[[0, 1]],
        "allx": allx,
        "ally": np.eye(classes, dtype=np.int64)[[0, 1, 0]],
        "tx": sp.csr_matrix(np.ones((2, features), dtype=np.float32)),
        "ty": np.eye(classes, dtype=np.int64)[[1, 0]],
        "graph": defaultdict(list, {0: [1, 2], 1: [0], 2: [0, 3], 3: [2, 4], 4: [3]}),
    }
    for part, value in parts.items():
        with open(folder / f"ind.{name}.{part}", "wb") as f:
            pickle.dump(value, f, protocol=2)
    (folder / f"ind.{name}.test.index").write_text("\n".join(map(str, test_order)) + "\n")


def test_planetoid_folder_loads_with_test_nodes_in_place(tmp_path):
    _write_planetoid(tmp_path)
    graph = load_graph("cora", tmp_path)
    assert graph.num_nodes == 5 and graph.num_classes == 2
    assert graph.edge_index.shape == (2, 8)  # 4 undirected edges
    assert graph.y.tolist() == [0, 1, 0, 0, 1]  # ty's first row belongs to node 4, its second to node 3
    assert graph.train_mask.tolist() == [True, True, False, False, False]
    assert graph.test_mask.tolist() == [False, False, False, True, True]
    torch.testing.assert_close(graph.x.sum(1), torch.ones(5))  # row-normalised
    assert load_dataset("cora", root=tmp_path).num_nodes == 5


def test_planetoid_missing_and_malformed_files_are_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="citeseer: .* is not a folder; expected layout: a folder holding"):
        load_graph("citeseer", tmp_path / "nope")
    _write_planetoid(tmp_path)
    (tmp_path / "ind.cora.ty").unlink()
    with pytest.raises(FileNotFoundError, match=r"cora: missing .*ind\.cora\.ty"):
        load_graph("cora", tmp_path)
    (tmp_path / "ind.cora.ty").write_bytes(b"not a pickle")
    with pytest.raises(ValueError, match=r"cora: .*ind\.cora\.ty.* is not a Planetoid pickle"):
        load_graph("cora", tmp_path)


def test_planetoid_refuses_a_pickle_that_references_other_code(tmp_path):
    _write_planetoid(tmp_path)
    with open(tmp_path / "ind.cora.graph", "wb") as f:
        pickle.dump(pytest.raises, f)  # a global no Planetoid file holds
    with pytest.raises(ValueError, match="which a Planetoid file never holds"):
        load_graph("cora", tmp_path)


def test_planetoid_inconsistent_lengths_and_test_index(tmp_path):
    _write_planetoid(tmp_path, test_order=(4,))
    with pytest.raises(ValueError, match="cora: feature and label files disagree in length"):
        load_graph("cora", tmp_path)
    (tmp_path / "ind.cora.test.index").write_text("4\nthree\n")
    with pytest.raises(ValueError, match="cora: .* must hold one node id per line"):
        load_graph("cora", tmp_path)


def test_unknown_graph_name():
    with pytest.raises(ValueError, match="load_graph: name must be one of 'karate', 'cora'"):
        load_graph("reddit")
