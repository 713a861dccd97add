"""The node and recommend tasks: graph models through the one trainer, metrics and checkpoints."""

import pytest

from convzoo.data.graphs import karate_club
from convzoo.data.movielens import synthetic_interactions
from convzoo.models.graph_training import recall_ndcg_at_k
from convzoo.train import TrainConfig, build_from_checkpoint, evaluate_checkpoint, train


def test_sgc_on_karate_classifies_the_held_out_members(tmp_path):
    config = TrainConfig(task="node", model="sgc", epochs=200, out=str(tmp_path), save_every=100, progress=False)
    result = train(config)
    assert result.history[-1]["step"] == 200  # one full-graph step per epoch
    assert result.test_accuracy >= 0.85
    graph = karate_club()
    model, checkpoint = build_from_checkpoint(tmp_path / "checkpoint")
    predicted = model(graph.x, graph.edge_index).argmax(1)
    by_hand = (predicted[graph.test_mask] == graph.y[graph.test_mask]).float().mean().item()
    assert by_hand == pytest.approx(result.test_accuracy)
    scored = evaluate_checkpoint(tmp_path / "checkpoint")
    assert scored.accuracy == pytest.approx(by_hand) and scored.images == int(graph.test_mask.sum())


def test_the_node_task_refuses_data_that_is_not_a_graph():
    with pytest.raises(ValueError, match="'digits' is not a graph"):
        train(TrainConfig(task="node", model="sgc", data="digits", progress=False))


def test_lcfn_beats_popularity_and_its_metrics_equal_the_reference(tmp_path):
    config = TrainConfig(
        task="recommend",
        model="lcfn",
        data="synthetic-ratings",
        epochs=20,
        batch_size=1024,
        out=str(tmp_path),
        progress=False,
    )
    result = train(config)
    last = result.test_metrics
    assert last["ndcg"] > 1.5 * last["ndcg_popularity"] and last["recall"] > last["recall_popularity"]
    model, _ = build_from_checkpoint(tmp_path / "checkpoint")
    users, items = model.embeddings()
    recall, ndcg = recall_ndcg_at_k(users @ items.T, synthetic_interactions(), 20)
    assert (recall, ndcg) == pytest.approx((last["recall"], last["ndcg"]))


def test_recommend_at_another_k(tmp_path):
    result = train(
        TrainConfig(
            task="recommend",
            model="lcfn",
            data="synthetic-ratings",
            epochs=1,
            options={"k": 5},
            batch_size=4096,
            progress=False,
        )
    )
    users, items = result.model.embeddings()
    recall, _ = recall_ndcg_at_k((users @ items.T).detach(), synthetic_interactions(), 5)
    assert result.test_metrics["recall"] == pytest.approx(recall)
