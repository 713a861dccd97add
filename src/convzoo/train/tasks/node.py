"""Node classification on one graph (transductive): full-batch cross-entropy on the training nodes.

One step per epoch, as SGC (S73) and GCN train: the whole graph is one batch, so the task cannot be spread over DDP
ranks. Graph models own their graph (SGC caches ``S^K X``, the shared-adjacency GCN (S94) learns its adjacency
from the normalised one), so :meth:`Node.create` builds on the graph this task loaded last; a model rebuilt from a
checkpoint takes those tensors from the checkpoint.
"""

from __future__ import annotations

import dataclasses
import inspect
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.utils.data import Dataset

from convzoo.core.graph import Graph
from convzoo.data.base import load_dataset
from convzoo.registry import MODELS, TASKS
from convzoo.train.task import Batch, Task

if TYPE_CHECKING:
    from convzoo.train.trainer import TrainConfig

__all__ = ["Node", "GraphData", "GraphInfo", "node_logits"]


@dataclass(frozen=True)
class GraphInfo:
    """What a node-classification checkpoint records of its graph."""

    name: str
    num_nodes: int
    num_features: int
    num_classes: int
    train_nodes: int
    test_nodes: int
    root: str | None = None


class GraphData(Dataset):
    """One graph as a one-item dataset (the whole graph is the batch)."""

    def __init__(self, graph: Graph, root: str | None) -> None:
        self.graph = graph
        self.info = GraphInfo(
            graph.name,
            graph.num_nodes,
            graph.num_features,
            graph.num_classes,
            int(graph.train_mask.sum()),
            int(graph.test_mask.sum()),
            root,
        )

    def __len__(self) -> int:
        return 1

    def __getitem__(self, index: int) -> Graph:
        return self.graph


def node_logits(model: nn.Module, graph: Graph) -> Tensor:
    """``(V, classes)``: a node model called the way its family takes input, ``(x, edge_index)`` or ``(x)``."""
    if len(inspect.signature(model.forward).parameters) >= 2:
        return model(graph.x, graph.edge_index)
    return model(graph.x)


@TASKS.register("node", kind="task", papers=("sgc",))
class Node(Task):
    """Node classification: a graph model on one graph, full-batch cross-entropy, test-node accuracy."""

    name = "node"
    primary = "acc"
    default_data = "karate"
    model_kinds = ("graph",)
    # Kipf & Welling's GCN recipe (Adam, lr 0.01, weight decay 5e-4; decoupled here: AdamW), for 200 epochs; SGC's
    # own lr 0.2 makes the GCNs diverge, and SGC reaches its accuracy at 0.01 too, in the same 200 epochs
    recipe = {"optimizer": "adamw", "lr": 0.01, "weight_decay": 5e-4}
    distributed = False
    unit = "test nodes"

    def __init__(self) -> None:
        self._graph: Graph | None = None

    def load(self, data: str, split: str, root: str | None, options: dict[str, Any]) -> Dataset:
        graph = load_dataset(data, split, root)
        if not isinstance(graph, Graph):
            raise ValueError(
                f"train --task node: {data!r} is not a graph data set (try karate, cora, citeseer, pubmed)"
            )
        self._graph = graph
        return GraphData(dataclasses.replace(graph, name=data), root)

    def examples(self, dataset: Dataset) -> int:
        return dataset.info.test_nodes

    def batches(self, dataset: Dataset, batch_size: int, sampler: Any) -> list[Batch]:
        return [(dataset.graph,)]

    def to_device(self, batch: Batch, device: torch.device) -> Batch:
        (graph,) = batch
        moved = {
            f.name: getattr(graph, f.name).to(device)
            if isinstance(getattr(graph, f.name), Tensor)
            else getattr(graph, f.name)
            for f in dataclasses.fields(graph)
        }
        return (Graph(**moved),)

    def architecture(self, config: TrainConfig, info: Any) -> dict[str, Any]:
        fields = {f.name for f in dataclasses.fields(MODELS.get(config.model).info.config)}
        sizes = {"in_features": info.num_features, "num_classes": info.num_classes, "num_nodes": info.num_nodes}
        return {"model": config.model, "cfg": {**{k: v for k, v in sizes.items() if k in fields}, **config.cfg}}

    def create(self, architecture: dict[str, Any]) -> nn.Module:
        entry = MODELS.get(architecture["model"])
        cfg = dict(architecture.get("cfg", {}))
        if self._graph is not None and "edge_index" in inspect.signature(entry.obj).parameters:
            return entry.obj(edge_index=self._graph.edge_index, **cfg)
        return entry.obj(**cfg)

    def step(self, net: nn.Module, batch: Batch, config: TrainConfig) -> tuple[Tensor, dict[str, float]]:
        (graph,) = batch
        logits = node_logits(net, graph)  # (V, classes)
        mask = graph.train_mask
        loss = F.cross_entropy(logits[mask].float(), graph.y[mask])
        count = int(mask.sum())
        correct = (logits[mask].argmax(1) == graph.y[mask]).sum().item()
        return loss, {"seen": count, "loss_sum": loss.item() * count, "acc": correct}

    @torch.no_grad()
    def evaluate(self, model: nn.Module, dataset: Dataset, device: torch.device) -> dict[str, float]:
        (graph,) = self.to_device((dataset.graph,), device)
        logits = node_logits(model, graph)
        mask = graph.test_mask
        loss = F.cross_entropy(logits[mask].float(), graph.y[mask]).item()
        return {"loss": loss, "acc": (logits[mask].argmax(1) == graph.y[mask]).float().mean().item()}

    def check_data(self, architecture: dict[str, Any], info: Any) -> None:
        cfg = architecture.get("cfg", {})
        for key, value in (("num_classes", info.num_classes), ("in_features", info.num_features)):
            if key in cfg and cfg[key] != value:
                raise ValueError(f"{info.name} has {key}={value} but the checkpoint's model was built for {cfg[key]}")

    def describe(self, architecture: dict[str, Any]) -> str:
        return f"{architecture['model']} (node classification)"
