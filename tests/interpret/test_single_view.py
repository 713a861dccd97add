"""S35: synthetic shapes rendered as silhouettes, and the classification and retrieval baselines scored by IoU."""

from __future__ import annotations

import pytest
import torch

from convzoo.interpret.single_view import PRIMITIVES, reconstruction_baselines, synthetic_shapes, voxel_iou


def test_shapes_are_seeded_and_silhouettes_are_their_projections():
    shapes = synthetic_shapes(10, resolution=12, seed=4)
    assert shapes.voxels.shape == (10, 12, 12, 12) and shapes.silhouettes.shape == (10, 1, 12, 12)
    assert shapes.labels.tolist() == [i % len(PRIMITIVES) for i in range(10)]
    assert torch.equal(shapes.silhouettes[:, 0].bool(), shapes.voxels.any(3))
    assert (shapes.voxels.flatten(1).sum(1) > 0).all()
    assert torch.equal(synthetic_shapes(10, 12, seed=4).voxels, shapes.voxels)
    assert not torch.equal(synthetic_shapes(10, 12, seed=5).voxels, shapes.voxels)


def test_iou():
    a = torch.zeros(2, 4, 4, 4, dtype=torch.bool)
    b = a.clone()
    a[0, :2], b[0, 1:3] = True, True
    torch.testing.assert_close(voxel_iou(a, b), torch.tensor([1 / 3, 0.0]))


def test_retrieval_and_classification_baselines_beat_the_mean_shape():
    scores = reconstruction_baselines(synthetic_shapes(150, 16, seed=0), synthetic_shapes(40, 16, seed=1))
    assert scores.accuracy > 1.4 / len(PRIMITIVES)  # above chance
    assert scores.retrieval > scores.mean_shape + 0.03
    # S35's point: the category alone is a weak shape prior under random rotation; it stays near the mean shape
    assert abs(scores.classification - scores.mean_shape) < 0.1
    assert [name for name, _ in scores.rows()] == ["mean shape", "classification", "retrieval"]


def test_errors():
    with pytest.raises(ValueError, match="resolution must be"):
        synthetic_shapes(3, resolution=2)
