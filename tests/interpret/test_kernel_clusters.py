"""S56 depthwise kernel clusters: planted DoG kernels are recovered, random kernels are not called DoG."""

from __future__ import annotations

import pytest
import torch

from convzoo import create_model
from convzoo.interpret.kernel_clusters import classify_kernels, cluster_kernels, depthwise_kernels, kernel_templates


def _planted(count: int, family: str, generator: torch.Generator) -> torch.Tensor:
    templates, names = kernel_templates(7)
    pool = templates[[i for i, n in enumerate(names) if n == family]]
    picked = pool[torch.randint(len(pool), (count,), generator=generator)]
    signs = torch.randint(0, 2, (count, 1, 1), generator=generator) * 2 - 1
    scale = 0.5 + torch.rand(count, 1, 1, generator=generator, dtype=torch.float64)
    noise = 0.04 * torch.randn(count, 7, 7, generator=generator, dtype=torch.float64)  # a few % of the unit norm
    return picked * signs * scale + noise * scale


def test_planted_dog_kernels_in_a_convnext_are_recovered():
    generator = torch.Generator().manual_seed(0)
    model = create_model("convnext_tiny", num_classes=10, depths=(1, 1, 1, 1), dims=(8, 16, 32, 64))
    found = depthwise_kernels(model)
    assert list(found) and all(k.shape[-2:] == (7, 7) for k in found.values())
    name = list(found)[2]  # 32 kernels: plant 24 DoGs and leave 8 random
    conv = dict(model.named_modules())[name]
    with torch.no_grad():
        conv.weight[:24, 0] = _planted(24, "dog", generator).float()
        conv.weight[24:, 0] = torch.randn(8, 7, 7, generator=generator)
    classes = classify_kernels(depthwise_kernels(model)[name])
    assert classes.labels[:24] == ["dog"] * 24
    assert "dog" not in classes.labels[24:]
    assert classes.fractions["dog"] == pytest.approx(24 / 32)


def test_each_family_is_told_apart_and_clusters_are_named():
    generator = torch.Generator().manual_seed(1)
    families = ("dog", "d1", "d2")
    kernels = torch.cat([_planted(20, f, generator) for f in families])
    classes = classify_kernels(kernels)
    for index, family in enumerate(families):
        assert classes.labels[20 * index : 20 * index + 20] == [family] * 20
    centroids, named, assignment = cluster_kernels(kernels, clusters=6)
    assert centroids.shape == (6, 7, 7) and assignment.shape == (60,)
    assert set(named.labels) & {"dog", "d1", "d2"}
    assert classify_kernels(torch.randn(200, 7, 7, generator=generator)).fractions["dog"] < 0.05


def test_errors():
    with pytest.raises(ValueError, match=r"expected square kernels \(n, k, k\)"):
        classify_kernels(torch.randn(3, 3, 5))
    with pytest.raises(ValueError, match="size must be"):
        kernel_templates(1)
