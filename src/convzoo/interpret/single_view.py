"""Single-view reconstruction baselines (S35, recon-baselines): classification and retrieval on synthetic shapes.

S35 shows that single-view 3-D reconstruction networks behave like two simple baselines: *classification*
(predict the category, output its mean shape) and *retrieval* (find the most similar training image, output its
shape). :func:`synthetic_shapes` renders seeded primitives (sphere, box, cylinder, cone, torus) with random
size and rotation as voxel grids and their orthographic silhouettes; the baselines are scored by voxel IoU
against the mean-shape baseline that ignores the image.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from convzoo.core.validate import check_int
from convzoo.registry import ANALYSES

__all__ = [
    "PRIMITIVES",
    "ShapeSet",
    "synthetic_shapes",
    "voxel_iou",
    "ReconstructionScores",
    "reconstruction_baselines",
]

PRIMITIVES = ("sphere", "box", "cylinder", "cone", "torus")


@dataclass(frozen=True)
class ShapeSet:
    silhouettes: Tensor  # (n, 1, R, R) in {0, 1}
    voxels: Tensor  # (n, R, R, R) bool
    labels: Tensor  # (n,) index into PRIMITIVES


def _rotation(generator: torch.Generator) -> Tensor:
    q, r = torch.linalg.qr(torch.randn(3, 3, generator=generator))
    q = q * torch.sign(torch.diagonal(r))
    return q if torch.det(q) > 0 else -q  # a proper rotation (3, 3)


def _occupancy(kind: str, p: Tensor, size: Tensor) -> Tensor:
    x, y, z = (p[..., i] / size[i] for i in range(3))  # coordinates in the primitive's own frame
    if kind == "sphere":
        return x**2 + y**2 + z**2 <= 1
    if kind == "box":
        return (x.abs() <= 1) & (y.abs() <= 1) & (z.abs() <= 1)
    if kind == "cylinder":
        return (x**2 + y**2 <= 1) & (z.abs() <= 1)
    if kind == "cone":
        return (z.abs() <= 1) & (x**2 + y**2 <= ((1 - z) / 2) ** 2)
    ring = (x**2 + y**2).sqrt() - 0.7  # torus: tube of radius 0.3 around a ring of radius 0.7
    return ring**2 + (z / 0.5) ** 2 <= 0.3**2 * 4


def synthetic_shapes(n: int, resolution: int = 24, seed: int = 0) -> ShapeSet:
    """``n`` shapes, evenly spread over :data:`PRIMITIVES`, rotated and scaled at random (seeded)."""
    check_int(n, "n", "synthetic_shapes")
    check_int(resolution, "resolution", "synthetic_shapes", low=8)
    generator = torch.Generator().manual_seed(seed)
    axis = torch.linspace(-1, 1, resolution)
    grid = torch.stack(torch.meshgrid(axis, axis, axis, indexing="ij"), -1)  # (R, R, R, 3)
    voxels, labels = [], []
    for index in range(n):
        label = index % len(PRIMITIVES)
        size = 0.3 + 0.65 * torch.rand(3, generator=generator)
        rotation = _rotation(generator)
        voxels.append(_occupancy(PRIMITIVES[label], grid @ rotation, size))
        labels.append(label)
    voxels_t = torch.stack(voxels)  # (n, R, R, R)
    silhouettes = voxels_t.any(dim=3).float().unsqueeze(1)  # orthographic view along z: (n, 1, R, R)
    return ShapeSet(silhouettes, voxels_t, torch.tensor(labels))


def voxel_iou(predicted: Tensor, target: Tensor) -> Tensor:
    """Intersection over union per shape of boolean grids ``(n, R, R, R)`` → ``(n,)``."""
    predicted, target = predicted.flatten(1).bool(), target.flatten(1).bool()
    union = (predicted | target).sum(1).clamp_min(1)
    return (predicted & target).sum(1) / union


@dataclass(frozen=True)
class ReconstructionScores:
    """Mean voxel IoU of each baseline on the test shapes."""

    mean_shape: float
    classification: float
    retrieval: float
    accuracy: float  # the classification baseline's category accuracy

    def rows(self) -> list[tuple[str, float]]:
        return [("mean shape", self.mean_shape), ("classification", self.classification), ("retrieval", self.retrieval)]


@ANALYSES.register(
    "single_view_baselines",
    kind="analysis",
    papers=("recon-baselines",),
    summary="classification, retrieval and mean-shape baselines of single-view 3-D reconstruction (S35)",
)
def reconstruction_baselines(train: ShapeSet, test: ShapeSet) -> ReconstructionScores:
    """Score S35's baselines on ``test`` using ``train``: a logistic-regression classifier on silhouettes that
    outputs its class's mean voxel grid (thresholded at 0.5), and nearest-neighbour retrieval of a training
    silhouette that outputs that shape's voxels; both against the overall mean shape."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.neighbors import NearestNeighbors

    features = train.silhouettes.flatten(1).numpy()
    queries = test.silhouettes.flatten(1).numpy()
    mean_shape = train.voxels.float().mean(0) >= 0.5  # (R, R, R)
    class_shapes = torch.stack([train.voxels[train.labels == c].float().mean(0) >= 0.5 for c in range(len(PRIMITIVES))])
    classifier = LogisticRegression(max_iter=500, C=0.1).fit(features, train.labels.numpy())
    predicted = torch.from_numpy(classifier.predict(queries))
    neighbour = torch.from_numpy(NearestNeighbors(n_neighbors=1).fit(features).kneighbors(queries)[1][:, 0])
    return ReconstructionScores(
        mean_shape=float(voxel_iou(mean_shape.expand_as(test.voxels), test.voxels).mean()),
        classification=float(voxel_iou(class_shapes[predicted], test.voxels).mean()),
        retrieval=float(voxel_iou(train.voxels[neighbour], test.voxels).mean()),
        accuracy=float((predicted == test.labels).float().mean()),
    )
