"""Depthwise kernel clusters (S56, dw-kernel-clusters): depthwise kernels sorted against DoG and derivative templates.

S56 finds that the k×k kernels of depthwise convolutions fall into a few clusters resembling a difference of
Gaussians (DoG) and the first and second derivatives of a Gaussian. :func:`kernel_templates` builds those
families at several scales and orientations; :func:`classify_kernels` assigns each kernel the family of the
template it correlates with best (by absolute cosine, so a sign-flipped kernel counts) when the correlation
reaches ``threshold``, else ``"unclassified"``. :func:`cluster_kernels` runs k-means on the normalised kernels
and names each centroid the same way.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from convzoo.core.validate import check_int, check_number
from convzoo.registry import ANALYSES

__all__ = ["FAMILIES", "kernel_templates", "depthwise_kernels", "KernelClasses", "classify_kernels", "cluster_kernels"]

FAMILIES = ("dog", "gaussian", "d1", "d2", "d2_cross")


def _grid(size: int) -> tuple[Tensor, Tensor]:
    axis = torch.arange(size, dtype=torch.float64) - (size - 1) / 2
    return torch.meshgrid(axis, axis, indexing="ij")  # (k, k) each: rows y, columns x


def _gaussian(y: Tensor, x: Tensor, sigma: float) -> Tensor:
    return torch.exp(-(x**2 + y**2) / (2 * sigma**2))


def kernel_templates(size: int) -> tuple[Tensor, list[str]]:
    """Templates ``(T, size, size)`` (unit norm) and their family names for ``size``×``size`` kernels.

    ``dog``: centre minus surround Gaussians; ``gaussian``: a blob; ``d1``: first derivative of a Gaussian at 8
    orientations; ``d2``: second derivative along an axis at 4 orientations; ``d2_cross``: the mixed ∂²/∂x∂y.
    """
    check_int(size, "size", "kernel_templates", low=3)
    y, x = _grid(size)
    templates: list[Tensor] = []
    names: list[str] = []
    scales = [s * size / 7 for s in (0.6, 0.9, 1.3, 1.8)]
    for sigma in scales:
        for ratio in (1.6, 2.5):
            centre, surround = _gaussian(y, x, sigma), _gaussian(y, x, sigma * ratio)
            templates.append(centre / centre.sum() - surround / surround.sum())
            names.append("dog")
        templates.append(_gaussian(y, x, sigma))
        names.append("gaussian")
        for k in range(8):
            angle = k * math.pi / 4
            u = x * math.cos(angle) + y * math.sin(angle)
            templates.append(-u * _gaussian(y, x, sigma))
            names.append("d1")
        for k in range(4):
            angle = k * math.pi / 4
            u = x * math.cos(angle) + y * math.sin(angle)
            templates.append((u**2 / sigma**2 - 1) * _gaussian(y, x, sigma))
            names.append("d2")
        templates.append(x * y * _gaussian(y, x, sigma))
        names.append("d2_cross")
    stacked = torch.stack(templates)  # (T, k, k)
    return stacked / stacked.flatten(1).norm(dim=1).view(-1, 1, 1), names


def depthwise_kernels(model: nn.Module, size: int | None = None) -> dict[str, Tensor]:
    """The depthwise kernels ``(C·m, k, k)`` of every depthwise 2-D conv of ``model`` (``groups == in_channels``)."""
    found = {}
    for name, module in model.named_modules():
        if isinstance(module, nn.Conv2d) and module.groups == module.in_channels > 1:
            weight = module.weight.detach()  # (C·m, 1, k, k)
            k = weight.shape[-1]
            if weight.shape[-2] == k >= 3 and (size is None or k == size):
                found[name] = weight[:, 0].double()
    return found


@dataclass(frozen=True)
class KernelClasses:
    """Per-kernel family labels and correlations; ``fractions`` maps each family to its share."""

    labels: list[str]
    scores: Tensor  # (n,) best absolute cosine

    @property
    def fractions(self) -> dict[str, float]:
        counts = Counter(self.labels)
        return {family: counts.get(family, 0) / max(len(self.labels), 1) for family in (*FAMILIES, "unclassified")}

    @property
    def classified(self) -> float:
        return 1.0 - self.fractions["unclassified"]


def classify_kernels(kernels: Tensor, threshold: float = 0.8) -> KernelClasses:
    """Assign each kernel of ``kernels`` ``(n, k, k)`` the family of its best template, if ``|cos| ≥ threshold``."""
    if kernels.dim() != 3 or kernels.shape[1] != kernels.shape[2]:
        raise ValueError(f"classify_kernels: expected square kernels (n, k, k), got shape {tuple(kernels.shape)}")
    check_number(threshold, "threshold", "classify_kernels", low=0.0, high=1.0, low_open=False)
    templates, names = kernel_templates(kernels.shape[-1])
    flat = kernels.double().flatten(1)
    flat = flat / flat.norm(dim=1, keepdim=True).clamp_min(1e-12)  # (n, k²)
    cosine = (flat @ templates.flatten(1).T).abs()  # (n, T)
    scores, best = cosine.max(dim=1)
    labels = [names[int(b)] if float(s) >= threshold else "unclassified" for s, b in zip(scores, best, strict=True)]
    return KernelClasses(labels, scores)


@ANALYSES.register(
    "kernel_clusters",
    kind="analysis",
    papers=("dw-kernel-clusters",),
    summary="depthwise kernels clustered and named against DoG and derivative templates (S56)",
)
def cluster_kernels(kernels: Tensor, clusters: int = 8, seed: int = 0) -> tuple[Tensor, KernelClasses, Tensor]:
    """k-means of the sign-aligned unit-norm kernels: ``(centroids (K, k, k), their classes, assignment (n,))``.

    Each kernel's sign is flipped so its centre pixel is positive, so a kernel and its negative share a cluster.
    """
    from sklearn.cluster import KMeans

    check_int(clusters, "clusters", "cluster_kernels")
    flat = kernels.double().flatten(1)
    flat = flat / flat.norm(dim=1, keepdim=True).clamp_min(1e-12)
    centre = flat[:, flat.shape[1] // 2]
    flat = flat * torch.where(centre < 0, -1.0, 1.0).unsqueeze(1).to(flat)
    k = min(clusters, flat.shape[0])
    means = KMeans(n_clusters=k, n_init=4, random_state=seed).fit(flat.numpy())
    centroids = torch.from_numpy(means.cluster_centers_).view(k, *kernels.shape[1:])
    return centroids, classify_kernels(centroids, threshold=0.0), torch.from_numpy(means.labels_)
