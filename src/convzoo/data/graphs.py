"""Graphs for node classification: networkx's bundled karate club (embedded) and the Planetoid citation sets.

``load_graph(name, root=None)`` returns a :class:`~convzoo.core.graph.Graph` (features, undirected
``edge_index``, labels, train/val/test masks). The karate club is bundled with networkx: identity features
(as Kipf & Welling use for it), the two clubs as labels, and a fixed split of 4 labelled members per club.
Cora, CiteSeer and PubMed are read from the Planetoid raw folder (``ind.<name>.{x,y,tx,ty,allx,ally,graph,
test.index}``, as Yang et al. 2016 released them) with Kipf's public split: 20 labelled nodes per class,
the next 500 for validation and the listed 1,000 test nodes. The pickles are read by an unpickler that builds
only numpy arrays, SciPy CSR matrices, lists and dicts. Node classification is transductive: one graph holds
every split as masks, so ``load_dataset(name, split)`` returns the same graph for "train" and "test".
"""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import torch

from convzoo.core.graph import Graph, undirected
from convzoo.core.safe_pickle import NUMPY_GLOBALS, restricted_load
from convzoo.data.base import check_root
from convzoo.registry import DATASETS

__all__ = ["PLANETOID", "karate_club", "load_graph", "load_planetoid"]

PLANETOID = {"cora": "cora", "citeseer": "citeseer", "pubmed": "pubmed"}
_PARTS = ("x", "y", "tx", "ty", "allx", "ally", "graph")
KARATE_TRAIN_PER_CLASS = 4


def _layout(name: str) -> str:
    files = ", ".join(f"ind.{name}.{part}" for part in (*_PARTS, "test.index"))
    return f"a folder holding {files} (the Planetoid raw files)"


def _masks(num_nodes: int, train: torch.Tensor, test: torch.Tensor, val: torch.Tensor | None = None):
    masks = []
    for index in (train, test, val):
        mask = torch.zeros(num_nodes, dtype=torch.bool)
        if index is not None:
            mask[index] = True
        masks.append(mask)
    return masks


def karate_club(split: str = "train", root: str | Path | None = None) -> Graph:
    """Zachary's karate club (networkx, 34 members, 78 ties): identity features, the two clubs, 4 labelled per club."""
    if root is not None:
        raise ValueError(f"karate: is bundled with networkx and takes no data folder, got {str(root)!r}")
    import networkx as nx

    g = nx.karate_club_graph()
    edges = torch.tensor(list(g.edges()), dtype=torch.long).T  # (2, 78)
    labels = torch.tensor([0 if g.nodes[n]["club"] == "Mr. Hi" else 1 for n in g.nodes()], dtype=torch.long)
    generator = torch.Generator().manual_seed(0)
    train = torch.cat(
        [
            torch.nonzero(labels == c)[:, 0][torch.randperm(int((labels == c).sum()), generator=generator)][
                :KARATE_TRAIN_PER_CLASS
            ]
            for c in (0, 1)
        ]
    )
    test = torch.tensor([n for n in range(g.number_of_nodes()) if n not in set(train.tolist())])
    train_mask, test_mask, _ = _masks(g.number_of_nodes(), train, test)
    x = torch.eye(g.number_of_nodes())
    return Graph("karate", x, undirected(edges), labels, train_mask, test_mask, 2)


# what a Planetoid pickle references beyond numpy: SciPy CSR/LIL matrices, lists, (default)dicts
_PLANETOID_GLOBALS = (
    NUMPY_GLOBALS
    | {
        ("collections", "defaultdict"),
        ("builtins", "list"),
        ("__builtin__", "list"),
        ("copy_reg", "_reconstructor"),
        ("copyreg", "_reconstructor"),
        ("builtins", "object"),
        ("__builtin__", "object"),
    }
    | {(module, cls) for module in ("scipy.sparse.csr", "scipy.sparse._csr") for cls in ("csr_matrix", "csr_array")}
)


def _read(name: str, path: Path) -> object:
    if not path.is_file():
        raise FileNotFoundError(f"{name}: missing {str(path)!r}; expected layout: {_layout(name)}")
    try:
        with path.open("rb") as f:
            return restricted_load(f, _PLANETOID_GLOBALS, "a Planetoid file", encoding="latin1")
    except (pickle.UnpicklingError, EOFError, ValueError, AttributeError, TypeError, IndexError) as error:
        raise ValueError(f"{name}: {str(path)!r} is not a Planetoid pickle ({error})") from None


def _dense(name: str, part: str, value: object) -> np.ndarray:
    array = value.toarray() if hasattr(value, "toarray") else np.asarray(value)
    if array.ndim != 2:
        raise ValueError(f"{name}: ind.{name}.{part} must hold a 2-d matrix, got shape {array.shape}")
    return array.astype(np.float32)


def load_planetoid(name: str, root: str | Path | None) -> Graph:
    """Cora, CiteSeer or PubMed from the Planetoid raw files in ``root`` (Kipf & Welling's public split)."""
    folder = check_root(name, root, _layout(name))
    parts = {part: _read(name, folder / f"ind.{name}.{part}") for part in _PARTS}
    index_file = folder / f"ind.{name}.test.index"
    if not index_file.is_file():
        raise FileNotFoundError(f"{name}: missing {str(index_file)!r}; expected layout: {_layout(name)}")
    try:
        test_index = np.array([int(line) for line in index_file.read_text().split()], dtype=np.int64)
    except ValueError:
        raise ValueError(f"{name}: {str(index_file)!r} must hold one node id per line") from None
    x, tx, allx = (_dense(name, p, parts[p]) for p in ("x", "tx", "allx"))
    y, ty, ally = (_dense(name, p, parts[p]) for p in ("y", "ty", "ally"))
    if len(tx) != len(test_index) or len(ty) != len(tx) or len(ally) != len(allx) or len(y) != len(x):
        raise ValueError(
            f"{name}: feature and label files disagree in length (tx {len(tx)}, test.index "
            f"{len(test_index)}, ty {len(ty)}, allx {len(allx)}, ally {len(ally)})"
        )
    graph = parts["graph"]
    if not isinstance(graph, dict):
        raise ValueError(f"{name}: ind.{name}.graph must hold a dict of adjacency lists, got {type(graph).__name__}")
    # test nodes are listed out of order (CiteSeer also has isolated ids with no features): place each at its id
    num_nodes = max(len(allx) + len(tx), int(test_index.max()) + 1 if len(test_index) else 0)
    features = np.zeros((num_nodes, allx.shape[1]), dtype=np.float32)
    labels = np.zeros((num_nodes, ally.shape[1]), dtype=np.float32)
    features[: len(allx)], labels[: len(ally)] = allx, ally
    features[test_index], labels[test_index] = tx, ty
    edges = [(int(s), int(t)) for s, targets in graph.items() for t in targets if int(t) < num_nodes]
    edge_index = undirected(torch.tensor(edges, dtype=torch.long).T.reshape(2, -1))
    has_label = labels.sum(1) > 0
    y_all = torch.from_numpy(labels.argmax(1)).long()
    train = torch.arange(len(y))
    val = torch.arange(len(y), min(len(y) + 500, len(allx)))
    test = torch.from_numpy(np.sort(test_index[has_label[test_index]]))
    train_mask, test_mask, val_mask = _masks(num_nodes, train, test, val)
    feats = torch.from_numpy(features)
    feats = feats / feats.sum(1, keepdim=True).clamp_min(1)  # row-normalised bag of words, as Kipf & Welling
    return Graph(name, feats, edge_index, y_all, train_mask, test_mask, labels.shape[1], val_mask)


def load_graph(name: str, root: str | Path | None = None) -> Graph:
    """The graph ``name`` ("karate", "cora", "citeseer", "pubmed")."""
    if name == "karate":
        return karate_club(root=root)
    if name not in PLANETOID:
        raise ValueError(f"load_graph: name must be one of 'karate', {', '.join(map(repr, PLANETOID))}, got {name!r}")
    return load_planetoid(name, root)


DATASETS.register("karate", kind="graph", dims=(1,), summary="Zachary's karate club (networkx): 34 nodes, 2 clubs")(
    karate_club
)
for _key, _title in (("cora", "Cora"), ("citeseer", "CiteSeer"), ("pubmed", "PubMed")):

    def _loader(split: str = "train", root: str | Path | None = None, _name: str = _key) -> Graph:
        return load_planetoid(_name, root)

    DATASETS.register(_key, kind="graph", dims=(1,), summary=f"{_title} citation graph from the Planetoid raw files")(
        _loader
    )
