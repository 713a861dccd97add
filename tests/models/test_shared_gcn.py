"""GCN with one global adjacency (S94): one parameter, read by every layer; frozen, it is Kipf & Welling's GCN."""

from __future__ import annotations

import pytest
import torch

from convzoo.core.graph import dense_normalized_adjacency
from convzoo.data.graphs import karate_club
from convzoo.models.graph_training import fit_node_classifier
from convzoo.registry import MODELS


def _model(**overrides):
    graph = karate_club()
    torch.manual_seed(0)
    return MODELS.get("shared_gcn").obj(graph.edge_index, **overrides), graph


def test_one_adjacency_parameter_shared_by_every_layer():
    model, graph = _model(layers=3)
    adjacency = [name for name, _ in model.named_parameters() if "adjacency" in name]
    assert adjacency == ["adjacency"]  # one global parameter, no per-layer copy
    assert not any("adjacency" in name for layer in model.layers for name, _ in layer.named_parameters())
    seen = []
    hooks = [layer.register_forward_hook(lambda m, args, out: seen.append(args[1])) for layer in model.layers]
    model.eval()
    model(graph.x).sum().backward()
    assert len(seen) == 3 and all(a is model.adjacency for a in seen)
    assert model.adjacency.grad is not None and model.adjacency.grad.abs().sum() > 0
    for hook in hooks:
        hook.remove()


def test_each_layers_gradient_reaches_the_shared_adjacency():
    model, graph = _model(layers=2)
    model.eval()
    grads = []
    for i in range(2):
        model.zero_grad()
        h = graph.x
        for j, layer in enumerate(model.layers):
            adjacency = model.adjacency if j == i else model.adjacency.detach()
            h = layer(h, adjacency)
            h = torch.relu(h) if j == 0 else h
        h.square().sum().backward()
        grads.append(model.adjacency.grad.clone())
    assert all(g.abs().sum() > 0 for g in grads)


def test_frozen_adjacency_is_kipf_and_wellings_gcn():
    model, graph = _model(learn_adjacency=False)
    assert "adjacency" in dict(model.named_buffers()) and not any("adjacency" in n for n, _ in model.named_parameters())
    model.eval()
    s = dense_normalized_adjacency(graph.edge_index, 34)
    first, second = model.layers[0].linear, model.layers[1].linear
    expected = s @ (torch.relu(s @ (graph.x @ first.weight.T + first.bias)) @ second.weight.T + second.bias)
    torch.testing.assert_close(model(graph.x), expected)
    fit = fit_node_classifier(model, graph, epochs=100, lr=0.01, weight_decay=5e-4)
    assert fit.test_accuracy >= 0.8, fit


def test_bad_input_names_the_model():
    model, _ = _model()
    with pytest.raises(ValueError, match=r"shared_gcn: expected node features \(34, 34\), got \(3, 34\)"):
        model(torch.randn(3, 34))
