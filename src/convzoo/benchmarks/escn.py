"""Suite ``escn``: eSCN's SO(2) edge convolution (S1) against e3nn's ``FullyConnectedTensorProduct`` doing the same one.

Both sides get the same edges, channels and degree L, with the per-graph geometry precomputed once as each
method does in a network (eSCN: the edge frames' Wigner-D rows; the tensor product: the edge harmonics
``Y(r̂)`` of degrees 0…L); the input is the source features in e3nn's layout ``(E, C·(L+1)²)``, so the layout
conversion is charged to eSCN. The exact cases (``m_max = L``) load the tensor product's weights into eSCN
through the paper's weight map, and the harness checks both give the same messages before timing; the
``m_max = 2`` case is the paper's truncation. ``geometry`` times the two precomputations themselves.
``cost_exponent(result)`` fits ``time ∝ L^p`` over the exact cases: the paper's claim is O(L³) against O(L⁶).
"""

from __future__ import annotations

import math
from functools import partial

import torch
from torch import Tensor, nn

from convzoo.ops.escn import (
    ESCNConv,
    edge_frame,
    from_irreps_array,
    load_tensor_product_,
    require_e3nn,
    to_irreps_array,
)
from convzoo.profile.bench import Case
from convzoo.registry import SUITES

__all__ = ["cost_exponent", "escn_cases"]

FULL = {"channels": 16, "edges": 512, "degrees": (2, 3, 4, 5, 6, 7, 8)}
QUICK = {"channels": 4, "edges": 32, "degrees": (2, 3)}


class _ESCNEdges(nn.Module):
    """eSCN messages of fixed edges (frames precomputed): e3nn-layout ``(E, C·D)`` in and out."""

    def __init__(self, conv: ESCNConv, edge_vec: Tensor) -> None:
        super().__init__()
        self.conv, self.frame = conv, edge_frame(edge_vec, conv.lmax, conv.mmax)

    def forward(self, x: Tensor) -> Tensor:
        messages = self.conv.edge_messages(from_irreps_array(x, self.conv.in_channels), self.frame)  # (E, D, C)
        return to_irreps_array(messages)


class _TensorProductEdges(nn.Module):
    """``tp(x, Y(r̂))`` for fixed edges (harmonics precomputed)."""

    def __init__(self, tp: nn.Module, harmonics: Tensor) -> None:
        super().__init__()
        self.tp = tp
        self.register_buffer("harmonics", harmonics)

    def forward(self, x: Tensor) -> Tensor:
        return self.tp(x, self.harmonics)


class _Geometry(nn.Module):
    def __init__(self, lmax: int, method: str) -> None:
        super().__init__()
        self.lmax, self.method = lmax, method

    def forward(self, edge_vec: Tensor) -> Tensor:
        if self.method == "frame":
            return edge_frame(edge_vec, self.lmax).to_frame
        o3 = require_e3nn()
        irreps = o3.Irreps([(1, (l, 1)) for l in range(self.lmax + 1)])
        return o3.spherical_harmonics(irreps, edge_vec, normalize=True, normalization="component")


def _edges(count: int) -> Tensor:
    return torch.randn(count, 3, generator=torch.Generator().manual_seed(0))


def _e3nn():
    """e3nn's ``o3``; without e3nn the case is skipped (on ``RuntimeError``) instead of ending the run."""
    try:
        return require_e3nn()
    except ImportError as error:
        raise RuntimeError(str(error)) from None


def _pair(lmax: int, mmax: int, channels: int, edges: int) -> tuple[nn.Module, nn.Module, Tensor]:
    o3 = _e3nn()
    torch.manual_seed(0)
    features = o3.Irreps([(channels, (l, 1)) for l in range(lmax + 1)])
    harmonics_irreps = o3.Irreps([(1, (l, 1)) for l in range(lmax + 1)])
    tp = o3.FullyConnectedTensorProduct(features, harmonics_irreps, features)
    vec = _edges(edges)
    harmonics = o3.spherical_harmonics(harmonics_irreps, vec, normalize=True, normalization="component")
    conv = load_tensor_product_(ESCNConv(channels, channels, lmax, mmax=mmax), tp)
    x = torch.randn(edges, features.dim, generator=torch.Generator().manual_seed(1))
    return _ESCNEdges(conv, vec), _TensorProductEdges(tp, harmonics), x


def _geometry(lmax: int, edges: int) -> tuple[nn.Module, nn.Module, Tensor]:
    _e3nn()
    return _Geometry(lmax, "frame"), _Geometry(lmax, "harmonics"), _edges(edges)


@SUITES.register(
    "escn",
    kind="suite",
    papers=("escn",),
    summary="eSCN SO(2) edge conv vs e3nn FullyConnectedTensorProduct, same edges/channels, L = 2…8",
)
def escn_cases(quick: bool = False, batch: int | None = None) -> list[Case]:
    """Exact eSCN (m_max = L) against the tensor product at each L; the paper's m_max = 2 at L = 6; the geometry."""
    shape = QUICK if quick else FULL
    channels, edges = shape["channels"], batch or shape["edges"]
    cases = [
        Case(
            name=f"L={lmax} exact {edges}x{channels}",
            a=f"escn L={lmax} m={lmax}",
            b=f"e3nn FCTP L={lmax}",
            build=partial(_pair, lmax, lmax, channels, edges),
            same_output=True,
        )
        for lmax in shape["degrees"]
    ]
    top = max(shape["degrees"]) if quick else 6
    cases.append(
        Case(
            name=f"L={top} m_max=2 {edges}x{channels}",
            a=f"escn L={top} m=2",
            b=f"e3nn FCTP L={top}",
            build=partial(_pair, top, 2, channels, edges),
        )
    )
    cases.append(
        Case(
            name=f"geometry L={top} {edges} edges",
            a="edge frames (Wigner-D)",
            b="edge harmonics Y(r̂)",
            build=partial(_geometry, top, edges),
        )
    )
    return cases


def cost_exponent(result: dict) -> dict[str, float]:
    """Least-squares slope of ``log time`` against ``log L`` over the exact cases of a ``bench escn`` JSON result:
    ``{"escn": p_a, "tensor_product": p_b}``."""
    points = [
        (int(case["name"].split()[0][2:]), case["a"]["median_ms"], case["b"]["median_ms"])
        for case in result["cases"]
        if " exact " in case["name"]
    ]
    if len(points) < 2:
        raise ValueError(f"cost_exponent: needs at least two exact cases, got {len(points)}")

    def slope(values: list[float]) -> float:
        xs = [math.log(p[0]) for p in points]
        ys = [math.log(v) for v in values]
        mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
        return sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / sum((x - mx) ** 2 for x in xs)

    return {"escn": slope([p[1] for p in points]), "tensor_product": slope([p[2] for p in points])}
