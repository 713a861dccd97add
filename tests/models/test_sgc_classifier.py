"""SGC on the karate club: a sensible accuracy from 4 labelled members per club; registry entry."""

from __future__ import annotations

from convzoo.data.graphs import karate_club
from convzoo.models.graph_training import fit_node_classifier
from convzoo.registry import MODELS


def test_sgc_classifies_the_karate_club_from_eight_labels():
    graph = karate_club()
    model = MODELS.get("sgc").obj()  # K = 2, 34 identity features, 2 classes
    fit = fit_node_classifier(model, graph, epochs=100)
    assert fit.train_accuracy == 1.0
    assert fit.test_accuracy >= 0.85, fit


def test_registration():
    entry = MODELS.get("sgc")
    assert entry.kind == "graph" and entry.papers == ("sgc",) and entry.info.config.k == 2
    assert sum(p.numel() for p in entry.obj().parameters()) == entry.info.params
