"""Filter distribution statistics (S87, filter-distributions): how the learned k×k filters of each layer are spread.

Per convolution layer with square ``k×k`` kernels: the count, mean and spread of the coefficients, the share of
near-zero filters (sparsity), and the *variance entropy*: the entropy of the filters' principal-component
variances over ``log(k²)``, 1 for unstructured (white) filters and near 0 when one pattern dominates. Two
models (two checkpoints of one architecture, or two architectures) compare layer by layer through the
symmetric KL divergence of their coefficient distributions in the first layer's principal basis.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from convzoo.registry import ANALYSES

__all__ = ["LayerFilterStats", "layer_filters", "filter_statistics", "variance_entropy", "compare_filters"]


@dataclass(frozen=True)
class LayerFilterStats:
    layer: str
    shape: tuple[int, ...]
    filters: int
    mean: float
    std: float
    sparsity: float
    variance_entropy: float

    def row(self) -> tuple[object, ...]:
        shape = "x".join(str(s) for s in self.shape)
        return (self.layer, shape, self.filters, self.mean, self.std, self.sparsity, self.variance_entropy)


HEADERS = ("layer", "weight", "filters", "mean", "std", "sparsity", "variance entropy")


def layer_filters(model: nn.Module, size: int = 3) -> dict[str, Tensor]:
    """Every ``size``×``size`` 2-D filter of ``model``, per layer: ``{name: (C_out·C_in/g, size²)}``."""
    found = {}
    for name, module in model.named_modules():
        if isinstance(module, nn.Conv2d) and tuple(module.kernel_size) == (size, size):
            found[name] = module.weight.detach().double().reshape(-1, size * size)
    return found


def variance_entropy(filters: Tensor) -> float:
    """Entropy of the principal-component variances of ``filters`` ``(n, k²)``, over ``log(k²)`` (in [0, 1])."""
    centred = filters - filters.mean(0)
    variances = torch.linalg.svdvals(centred) ** 2
    shares = variances / variances.sum().clamp_min(1e-300)
    shares = shares[shares > 0]
    return float(-(shares * shares.log()).sum() / torch.log(torch.tensor(float(filters.shape[1]))))


@ANALYSES.register(
    "filter_statistics",
    kind="analysis",
    papers=("filter-distributions",),
    summary="per-layer filter distribution statistics, comparable between checkpoints (S87)",
)
def filter_statistics(model: nn.Module, size: int = 3, sparse_below: float = 0.01) -> list[LayerFilterStats]:
    """Statistics of every ``size``×``size`` layer; a filter is sparse when its largest |coefficient| is below
    ``sparse_below`` × the layer's largest."""
    stats = []
    for name, filters in layer_filters(model, size).items():
        peak = filters.abs().amax(1)  # (n,)
        sparsity = float((peak < sparse_below * peak.max().clamp_min(1e-300)).double().mean())
        shape = tuple(dict(model.named_modules())[name].weight.shape)
        stats.append(
            LayerFilterStats(
                name,
                shape,
                filters.shape[0],
                float(filters.mean()),
                float(filters.std()),
                sparsity,
                variance_entropy(filters) if filters.shape[0] > 1 else 0.0,
            )
        )
    return stats


def _histograms(coefficients: Tensor, edges: Tensor) -> Tensor:
    counts = torch.stack([torch.histogram(c.contiguous(), bins=edges).hist for c in coefficients.T])  # (k², B)
    return (counts + 1e-6) / (counts + 1e-6).sum(1, keepdim=True)


def compare_filters(model_a: nn.Module, model_b: nn.Module, size: int = 3, bins: int = 32) -> list[tuple[str, float]]:
    """Symmetric KL divergence per layer (layers of the same name in both models) of the filter distributions.

    Each layer's filters are projected on model A's principal basis of that layer and scaled by A's spread;
    the divergence sums over the k² coefficients. 0 for identical weights.
    """
    filters_a, filters_b = layer_filters(model_a, size), layer_filters(model_b, size)
    rows = []
    for name in [n for n in filters_a if n in filters_b]:
        a, b = filters_a[name], filters_b[name]
        _, _, basis = torch.linalg.svd(a - a.mean(0), full_matrices=False)  # (k², k²)
        scale = (a @ basis.T).abs().max().clamp_min(1e-12)
        pa, pb = (a @ basis.T) / scale, (b @ basis.T) / scale
        bound = float(max(pa.abs().max(), pb.abs().max()))
        edges = torch.linspace(-bound, bound, bins + 1, dtype=torch.float64)
        ha, hb = _histograms(pa, edges), _histograms(pb, edges)
        divergence = ((ha - hb) * (ha.log() - hb.log())).sum()
        rows.append((name, float(divergence)))
    return rows
