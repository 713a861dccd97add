"""Centred kernel alignment (S112, cka): how alike the representations of two layers are, of one model or two.

``CKA(K, L) = ⟨HKH, HLH⟩_F / (‖HKH‖_F ‖HLH‖_F)`` for Gram matrices ``K``, ``L`` of the same ``n`` inputs and the
centring matrix ``H = I − 11ᵀ/n``. Linear CKA uses ``K = XXᵀ`` (then it equals ``‖YᵀX‖²_F / (‖XᵀX‖_F ‖YᵀY‖_F)``
on centred features); RBF CKA uses ``K_ij = exp(−‖x_i − x_j‖² / 2σ²)`` with ``σ`` a fraction of the median
distance. Both are 1 for identical representations and invariant to orthogonal transforms and isotropic
scaling of the features (linear CKA also to their translation).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from convzoo.core.validate import check_choice, check_number
from convzoo.registry import ANALYSES

__all__ = ["linear_cka", "rbf_cka", "cka", "layer_features", "default_layers", "cka_matrix"]


def _as_matrix(x: Tensor, owner: str) -> Tensor:
    if x.dim() < 2:
        raise ValueError(f"{owner}: expected features (n, ...) with n ≥ 2 samples, got shape {tuple(x.shape)}")
    return x.reshape(x.shape[0], -1).double()  # (n, p)


def _centred_gram(gram: Tensor) -> Tensor:
    return gram - gram.mean(0, keepdim=True) - gram.mean(1, keepdim=True) + gram.mean()  # H K H


def _alignment(k: Tensor, l: Tensor) -> float:
    kc, lc = _centred_gram(k), _centred_gram(l)
    return float((kc * lc).sum() / (kc.norm() * lc.norm()).clamp_min(1e-300))


def linear_cka(x: Tensor, y: Tensor) -> float:
    """Linear CKA of features ``x`` ``(n, ...)`` and ``y`` ``(n, ...)`` (flattened per sample)."""
    x, y = _as_matrix(x, "linear_cka"), _as_matrix(y, "linear_cka")
    if x.shape[0] != y.shape[0]:
        raise ValueError(f"linear_cka: both feature sets need the same samples, got {x.shape[0]} and {y.shape[0]}")
    x, y = x - x.mean(0), y - y.mean(0)
    # feature-space form: cheaper than n×n Grams when n is larger than the feature counts
    if x.shape[0] > max(x.shape[1], y.shape[1]):
        cross = (y.T @ x).norm() ** 2
        return float(cross / ((x.T @ x).norm() * (y.T @ y).norm()).clamp_min(1e-300))
    return _alignment(x @ x.T, y @ y.T)


def _rbf_gram(x: Tensor, sigma_fraction: float) -> Tensor:
    squared = torch.cdist(x, x).pow(2)  # (n, n)
    median = squared[~torch.eye(x.shape[0], dtype=torch.bool)].median().sqrt()
    sigma = sigma_fraction * median.clamp_min(1e-12)
    return torch.exp(-squared / (2 * sigma**2))


def rbf_cka(x: Tensor, y: Tensor, sigma_fraction: float = 0.8) -> float:
    """RBF-kernel CKA; the bandwidth is ``sigma_fraction`` × the median pairwise distance of each feature set."""
    check_number(sigma_fraction, "sigma_fraction", "rbf_cka", low=0.0, low_open=True)
    x, y = _as_matrix(x, "rbf_cka"), _as_matrix(y, "rbf_cka")
    if x.shape[0] != y.shape[0]:
        raise ValueError(f"rbf_cka: both feature sets need the same samples, got {x.shape[0]} and {y.shape[0]}")
    return _alignment(_rbf_gram(x, sigma_fraction), _rbf_gram(y, sigma_fraction))


def cka(x: Tensor, y: Tensor, kernel: str = "linear") -> float:
    """CKA with ``kernel`` ``"linear"`` or ``"rbf"``."""
    check_choice(kernel, ("linear", "rbf"), "kernel", "cka")
    return linear_cka(x, y) if kernel == "linear" else rbf_cka(x, y)


def default_layers(model: nn.Module) -> list[str]:
    """The stage outputs of a convzoo classifier (``feature_info``), else every convolution of ``model``."""
    info = getattr(model, "feature_info", None)
    if info:
        return [f.module for f in info]
    layers = [n for n, m in model.named_modules() if isinstance(m, nn.modules.conv._ConvNd)]
    if not layers:
        raise ValueError(f"cka: {type(model).__name__} has no convolution to compare; name layers explicitly")
    return layers


def layer_features(model: nn.Module, inputs: Tensor, layers: Sequence[str], batch: int = 64) -> dict[str, Tensor]:
    """Each named layer's output for ``inputs`` ``(n, C, *S)``, flattened per sample: ``{name: (n, features)}``."""
    modules = dict(model.named_modules())
    missing = [name for name in layers if name not in modules]
    if missing:
        from convzoo.core.names import unknown_name_message

        raise ValueError(unknown_name_message("layer", missing[0], [n for n in modules if n]))
    collected: dict[str, list[Tensor]] = {name: [] for name in layers}
    handles = [
        modules[name].register_forward_hook(lambda _m, _i, out, name=name: collected[name].append(out.flatten(1)))
        for name in layers
    ]
    model.eval()
    try:
        with torch.no_grad():
            for start in range(0, inputs.shape[0], batch):
                model(inputs[start : start + batch])
    finally:
        for handle in handles:
            handle.remove()
    return {name: torch.cat(parts) for name, parts in collected.items()}


@ANALYSES.register(
    "cka",
    kind="analysis",
    papers=("cka",),
    summary="linear and RBF CKA between every pair of layers of two models (S112)",
)
def cka_matrix(
    model_a: nn.Module,
    model_b: nn.Module,
    inputs: Tensor,
    layers_a: Sequence[str] | None = None,
    layers_b: Sequence[str] | None = None,
    kernel: str = "linear",
) -> tuple[Tensor, list[str], list[str]]:
    """CKA between every layer of ``model_a`` and every layer of ``model_b`` on the same ``inputs``.

    Returns ``(matrix (len(layers_a), len(layers_b)), layers_a, layers_b)``; the layers default to
    :func:`default_layers`. Pass one model twice for its self-similarity.
    """
    layers_a = list(layers_a or default_layers(model_a))
    layers_b = list(layers_b or default_layers(model_b))
    features_a = layer_features(model_a, inputs, layers_a)
    features_b = (
        features_a if model_b is model_a and layers_b == layers_a else layer_features(model_b, inputs, layers_b)
    )
    matrix = torch.tensor([[cka(features_a[a], features_b[b], kernel) for b in layers_b] for a in layers_a])
    return matrix, layers_a, layers_b
