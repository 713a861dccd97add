"""LCFN (S59): the filter is low-pass in the graph's eigenbasis; it beats a popularity ranking; recall/NDCG@k."""

from __future__ import annotations

import math

import pytest
import torch

from convzoo.core.graph import Interactions
from convzoo.data.movielens import synthetic_interactions
from convzoo.models.graph_training import fit_recommender, popularity_scores, recall_ndcg_at_k
from convzoo.models.lcf import LCFN, LCFNConfig, hypergraph_laplacian, low_frequency_basis


def _small(data, frequencies=16, dim=32):
    config = LCFNConfig(data.num_users, data.num_items, dim, 1, frequencies, frequencies)
    torch.manual_seed(0)
    return LCFN(config, data.matrix())


def test_filter_response_is_low_pass_on_the_laplacian_eigenvectors():
    data = synthetic_interactions(60, 80)
    model = _small(data, frequencies=10)
    user_laplacian, _ = hypergraph_laplacian(data.matrix())
    values, vectors = torch.linalg.eigh(user_laplacian)  # every frequency of the user graph, ascending
    response = model.user_filters[0].detach().double()
    basis = model.user_basis.double()
    for k in range(len(values)):
        out = LCFN.low_pass(basis, response, vectors[:, k : k + 1])  # filter one pure frequency
        gain = (vectors[:, k] @ out[:, 0]).item()
        if k < 10:
            assert gain == pytest.approx(response[k].item(), abs=1e-5)  # passed with its learned gain
        elif values[k] > values[9] + 1e-6:
            assert abs(gain) < 1e-5 and out.norm() < 1e-5  # every higher frequency removed
    assert (values >= -1e-9).all() and (values <= 1 + 1e-9).all()  # a normalised hypergraph Laplacian


def test_low_frequency_basis_is_orthonormal_and_smooth():
    data = synthetic_interactions(50, 70)
    laplacian, _ = hypergraph_laplacian(data.matrix())
    values, basis = low_frequency_basis(laplacian, 8)
    torch.testing.assert_close(basis.T @ basis, torch.eye(8, dtype=basis.dtype), atol=1e-10, rtol=0)
    assert torch.all(values[:-1] <= values[1:])


def test_recall_and_ndcg_at_k_on_a_hand_example():
    data = Interactions("toy", 2, 5, torch.tensor([[0, 1], [0, 4]]), torch.tensor([[0, 0, 1], [1, 3, 2]]))
    scores = torch.tensor([[9.0, 1.0, 0.0, 2.0, 0.5], [0.0, 0.0, 1.0, 0.0, 5.0]])
    recall, ndcg = recall_ndcg_at_k(scores, data, k=2)
    # user 0: train item 0 masked, top-2 = (3, 1): both test items -> recall 1, ndcg 1
    # user 1: train item 4 masked, top-2 = (2, ·): hit at rank 1 -> recall 1, ndcg 1
    assert recall == pytest.approx(1.0) and ndcg == pytest.approx(1.0)
    recall, ndcg = recall_ndcg_at_k(-scores, data, k=1)
    assert recall == pytest.approx(0.0)


@pytest.mark.slow
def test_lcfn_beats_popularity_at_recall_and_ndcg_20():
    data = synthetic_interactions()
    model = _small(data)
    fit_recommender(model, data, epochs=30, lr=0.01)
    with torch.no_grad():
        recall, ndcg = recall_ndcg_at_k(model.scores(), data, k=20)
    base_recall, base_ndcg = recall_ndcg_at_k(popularity_scores(data), data, k=20)
    assert recall > 2 * base_recall and ndcg > 2 * base_ndcg, (recall, ndcg, base_recall, base_ndcg)


def test_lcfn_beats_popularity_after_a_short_fit():
    data = synthetic_interactions(100, 120, groups=4, density=0.1)
    model = _small(data, frequencies=8, dim=16)
    fit_recommender(model, data, epochs=8, lr=0.02)
    with torch.no_grad():
        recall, _ = recall_ndcg_at_k(model.scores(), data, k=20)
    base_recall, _ = recall_ndcg_at_k(popularity_scores(data), data, k=20)
    assert recall > base_recall and not math.isnan(recall), (recall, base_recall)


def test_bad_config_names_the_model():
    with pytest.raises(ValueError, match="lcfn: frequencies"):
        LCFN(LCFNConfig(5, 6, 4, 1, 10, 3))
    with pytest.raises(ValueError, match=r"lcfn: interactions must be \(5, 6\)"):
        LCFN(LCFNConfig(5, 6, 4, 1, 2, 3), torch.zeros(6, 5))
