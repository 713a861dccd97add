"""A small equivariant GNN of eSCN convolutions (S1) for rotation-invariant targets of point clouds (molecules).

Each node holds spherical channels ``(V, (L+1)², C)``, starting from an embedding of its type in degree 0.
A layer sends ``eSCN([x_source ‖ x_target])`` along each edge inside the cutoff, with the SO(2) inputs
modulated by a Gaussian basis of the edge length times a smooth cosine envelope (as eSCN's radial
function), averages the messages by the mean neighbour count, adds them to the node (residual) and applies
a gate: SiLU on degree 0, and each degree ``l > 0`` channel scaled by a sigmoid of the degree-0 channels
(equivariant, since the gates are invariant). The energy is an MLP of the final degree-0 channels, summed
over nodes. The edge frames are computed once per forward and shared by every layer.

Departures from the paper's OC20 network (L = 6, m_max = 2, 128 sphere channels, 8-20 layers, S2 activations
on a grid, force heads): a gate non-linearity instead of the point-wise activation on the sphere, and the
small defaults below, sized for CPU tests.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from convzoo.ops.escn import ESCNConv, edge_frame
from convzoo.registry import MODELS, ModelInfo

__all__ = ["ESCNNet", "ESCNNetConfig", "radius_graph"]


@dataclass(frozen=True)
class ESCNNetConfig:
    num_types: int = 4
    channels: int = 16
    lmax: int = 2
    mmax: int = 2
    layers: int = 2
    radial_basis: int = 8
    cutoff: float = 4.0


def radius_graph(pos: Tensor, cutoff: float, batch: Tensor | None = None) -> Tensor:
    """Directed edges ``(2, E)`` between distinct nodes of one graph closer than ``cutoff``."""
    batch = torch.zeros(len(pos), dtype=torch.long, device=pos.device) if batch is None else batch
    close = (torch.cdist(pos, pos) < cutoff) & (batch[:, None] == batch[None, :])
    close.fill_diagonal_(False)
    return torch.nonzero(close).T.flip(0)  # row 0 source, row 1 target


class ESCNNet(nn.Module):
    """Equivariant GNN with eSCN convolutions; ``forward(types, pos, batch=None) -> (graphs,)`` invariant energies."""

    def __init__(self, config: ESCNNetConfig) -> None:
        super().__init__()
        self.config = config
        c, dim = config.channels, (config.lmax + 1) ** 2
        self.dim = dim
        self.embedding = nn.Embedding(config.num_types, c)
        self.register_buffer("centers", torch.linspace(0.0, config.cutoff, config.radial_basis), persistent=False)
        self.convs = nn.ModuleList(
            ESCNConv(2 * c, c, config.lmax, mmax=config.mmax, radial_features=config.radial_basis)
            for _ in range(config.layers)
        )
        self.gates = nn.ModuleList(nn.Linear(c, c * config.lmax) for _ in range(config.layers))
        self.readout = nn.Sequential(nn.Linear(c, c), nn.SiLU(), nn.Linear(c, 1))

    def radial(self, length: Tensor) -> Tensor:
        """Gaussian basis of edge lengths times a cosine cutoff envelope: ``(E,)`` → ``(E, radial_basis)``."""
        width = self.config.cutoff / self.config.radial_basis
        gauss = torch.exp(-(((length[:, None] - self.centers) / width) ** 2))
        envelope = 0.5 * (torch.cos(math.pi * length / self.config.cutoff) + 1) * (length < self.config.cutoff)
        return gauss * envelope[:, None]

    def gate(self, x: Tensor, layer: int) -> Tensor:
        scalars = x[:, 0]  # (V, C): the invariant channels
        gates = torch.sigmoid(self.gates[layer](scalars)).view(len(x), self.config.lmax, -1)  # (V, L, C)
        degree = torch.repeat_interleave(
            torch.arange(1, self.config.lmax + 1), torch.arange(1, self.config.lmax + 1) * 2 + 1
        )
        return torch.cat([F.silu(scalars)[:, None], x[:, 1:] * gates[:, degree.to(x.device) - 1]], dim=1)

    def forward(self, types: Tensor, pos: Tensor, batch: Tensor | None = None) -> Tensor:
        if types.dim() != 1 or pos.shape != (len(types), 3):
            raise ValueError(
                f"escn_gnn: expected types (V,) and positions (V, 3), got {tuple(types.shape)} and {tuple(pos.shape)}"
            )
        batch = torch.zeros_like(types) if batch is None else batch
        edge_index = radius_graph(pos, self.config.cutoff, batch)
        vec = pos[edge_index[1]] - pos[edge_index[0]]  # (E, 3)
        frame = edge_frame(vec, self.config.lmax, self.config.mmax)  # shared by every layer
        scalars = self.radial(vec.norm(dim=1))  # (E, radial_basis)
        x = pos.new_zeros(len(types), self.dim, self.config.channels)
        x[:, 0] = self.embedding(types)
        mean_degree = max(edge_index.shape[1] / max(len(types), 1), 1.0)
        for layer, conv in enumerate(self.convs):
            pair = torch.cat([x[edge_index[0]], x[edge_index[1]]], dim=-1)  # (E, D, 2C): source ‖ target
            messages = conv.edge_messages(pair, frame, scalars)  # (E, D, C)
            x = x + x.new_zeros(x.shape).index_add_(0, edge_index[1], messages) / mean_degree
            x = self.gate(x, layer)
        energy = self.readout(x[:, 0])[:, 0]  # (V,)
        return energy.new_zeros(int(batch.max()) + 1 if len(batch) else 0).index_add_(0, batch, energy)


def _build(**overrides: Any) -> ESCNNet:
    return ESCNNet(replace(ESCNNetConfig(), **overrides))


MODELS.register(
    "escn_gnn",
    kind="equivariant",
    dims=(3,),
    papers=("escn",),
    summary="S1 eSCN message passing (L = 2, m_max = 2, 16 channels, 2 layers) for rotation-invariant energies",
    info=ModelInfo(family=ESCNNet, config=ESCNNetConfig(), input_size=(3,), takes_op=False, num_classes=1),
)(_build)
