"""eSCN (S1, Passaro & Zitnick 2023): SO(3) edge convolutions reduced to SO(2) linear maps in each edge's frame.

An SO(3) edge convolution mixes the source node's irreps ``x`` (degrees ``0 … L``) with the edge's spherical
harmonics ``Y(r̂)`` through Clebsch–Gordan tensor products: ``O(L⁶)``. eSCN rotates ``x`` into a frame whose
polar axis is the edge (e3nn's convention: the y axis), where ``Y(ŷ)`` is non-zero only at order ``m = 0``, so
each tensor-product path couples order ``m`` of the input only to orders ``±m`` of the output. Each pair of
orders ``(+m, −m)`` then transforms like a complex number ``z = x₊ + i·x₋`` under rotations about the edge
(``z → e^{imθ} z``), and the most general map commuting with them is one complex matrix per ``m``::

    y₊ = x₊ W_r − x₋ W_i,     y₋ = x₊ W_i + x₋ W_r     (m > 0; m = 0 has W_r only)
    message = D(R_e) · SO2(D(R_e)ᵀ · x),    R_e ŷ = r̂_e

with ``x_m`` the ``(L + 1 − m)·C_in`` coefficients of order ``m`` (all degrees ``l ≥ m``, all channels). The
paper keeps only orders ``|m| ≤ m_max`` (default 2 for L = 6 on OC20); ``m_max = L`` is exactly a fully
connected SO(3) tensor product with the edge's harmonics, and :func:`load_tensor_product_` writes the weight
map of the paper (Sec. 4: ``W_m = Σ_{l_f} h_{l_i,l_f,l_o} C^{l_o,±m}_{l_i,m; l_f,0}``) from an e3nn
``FullyConnectedTensorProduct`` into the op (tests/ops/test_escn.py checks they agree on every edge).

Irreps, Wigner-D matrices, the Euler angles of the edge frame and the Clebsch–Gordan coefficients all come
from e3nn (``pip install convzoo[graph]``); it is imported when an op is built, never by ``import convzoo``.

Layout: node features are ``(V, (L + 1)², C)`` ("spherical channels"), coefficient ``l² + l + m`` holding
degree ``l``, order ``m`` in e3nn's real basis; :func:`to_irreps_array` / :func:`from_irreps_array` convert to
and from e3nn's ``C x 0e + C x 1e + …`` arrays. The parity labels are all ``e``: eSCN is SO(3)-, not
O(3)-equivariant, and its SO(2) maps include the paths a parity-respecting tensor product would drop.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from functools import cache

import torch
from torch import Tensor, nn

from convzoo.core.validate import check_choice, check_int
from convzoo.registry import OPS

__all__ = [
    "EdgeFrame",
    "default_dtype",
    "ESCNConv",
    "edge_frame",
    "from_irreps_array",
    "load_tensor_product_",
    "require_e3nn",
    "so2_order_index",
    "to_irreps_array",
]

NAME = "escn"


def require_e3nn():
    """The ``e3nn.o3`` module, or an ``ImportError`` naming the extra that installs it."""
    try:
        from e3nn import o3
    except ImportError as error:  # pragma: no cover - depends on the environment
        raise ImportError(
            f"{NAME}: needs e3nn for irreps, Wigner-D matrices and spherical harmonics; "
            "install it with `pip install convzoo[graph]` (or `pip install e3nn`)"
        ) from error
    return o3


def so2_order_index(lmax: int, mmax: int) -> tuple[list[int], list[tuple[int, int, int]]]:
    """Coefficient indices in edge-frame order and the ``(m, start, count)`` of each order's block.

    The order is: the ``L + 1`` coefficients of ``m = 0`` (degrees 0…L), then for each ``m = 1…m_max`` the
    ``L + 1 − m`` coefficients of ``+m`` followed by those of ``−m``; ``count`` is ``L + 1 − m`` (one sign).
    """
    index = [l * l + l for l in range(lmax + 1)]
    blocks = [(0, 0, lmax + 1)]
    for m in range(1, mmax + 1):
        blocks.append((m, len(index), lmax + 1 - m))
        index += [l * l + l + m for l in range(m, lmax + 1)]
        index += [l * l + l - m for l in range(m, lmax + 1)]
    return index, blocks


@dataclass(frozen=True)
class EdgeFrame:
    """Each edge's rotation into its frame, computed once per graph and shared by every eSCN layer.

    ``to_frame``: ``(E, K, (L + 1)²)``, the rows of ``D(R_e)ᵀ`` for the ``K`` kept coefficients (``|m| ≤ m_max``,
    in :func:`so2_order_index` order). Rotating back uses its transpose.
    """

    to_frame: Tensor
    lmax: int
    mmax: int

    @property
    def num_edges(self) -> int:
        return self.to_frame.shape[0]


def edge_frame(edge_vec: Tensor, lmax: int, mmax: int | None = None, *, method: str = "closed_form") -> EdgeFrame:
    """The :class:`EdgeFrame` of edge vectors ``(E, 3)``: the Wigner-D of the rotation taking ŷ to each edge.

    e3nn's ``xyz_to_angles`` gives ``(α, β)`` with ``R(α, β, 0) ŷ = r̂`` (the rotation about the edge itself is
    free: the SO(2) maps commute with it, so γ = 0). e3nn writes ``D(α, β, 0) = exp(α Y) exp(β X)`` with ``X``,
    ``Y`` its generators about x and y. A rotation about y acts on each pair of orders ``±m`` as a plane
    rotation by ``mθ``, so it is applied in closed form, and ``exp(β X) = J exp(β Y) Jᵀ`` with ``J`` e3nn's
    Wigner-D of a fixed rotation taking ŷ to x̂ (computed once per degree): one small matrix product per degree
    and edge instead of three matrix exponentials (as the official eSCN code does). Tests check the result
    against e3nn's ``Irreps.D_from_angles``, which ``method="e3nn"`` calls directly (about 5× slower at L = 6).
    Computed in float64 and stored in the input's dtype.
    """
    o3 = require_e3nn()
    check_choice(method, ("closed_form", "e3nn"), "method", NAME)
    mmax = lmax if mmax is None else mmax
    if edge_vec.dim() != 2 or edge_vec.shape[1] != 3:
        raise ValueError(f"{NAME}: edge vectors must be (E, 3), got shape {tuple(edge_vec.shape)}")
    if edge_vec.numel() and not (edge_vec.norm(dim=1) > 0).all():
        raise ValueError(f"{NAME}: an edge vector has length 0 (a self-loop at one position has no frame)")
    alpha, beta = o3.xyz_to_angles(edge_vec.double())
    if method == "e3nn":
        with default_dtype(torch.float64):
            irreps = o3.Irreps([(1, (l, 1)) for l in range(lmax + 1)])
            wigner = irreps.D_from_angles(alpha, beta, torch.zeros_like(alpha))  # (E, D, D)
    else:
        blocks = []
        for l in range(lmax + 1):
            swap = _y_to_x(l, edge_vec.device)  # (2l+1, 2l+1)
            inner = swap @ _rotate_about_y(swap.T.expand(alpha.shape[0], -1, -1), beta, l)  # J exp(βY) Jᵀ = exp(βX)
            blocks.append(_rotate_about_y(inner, alpha, l))  # (E, 2l+1, 2l+1): D_l(α, β, 0)
        wigner = _block_diagonal(blocks)  # (E, D, D)
    index, _ = so2_order_index(lmax, mmax)
    to_frame = wigner.transpose(1, 2)[:, index, :]  # (E, K, D): rows of D(R_e)ᵀ kept by the m truncation
    return EdgeFrame(to_frame.to(edge_vec.dtype).contiguous(), lmax, mmax)


def _rotate_about_y(matrices: Tensor, angle: Tensor, l: int) -> Tensor:
    """``exp(angle · Y_l) @ matrices`` for ``(E, 2l+1, k)`` matrices. In e3nn's real basis row ``l + m`` becomes
    ``cos(mθ)·row(l + m) − sin(mθ)·row(l − m)``, row ``l − m`` becomes ``cos(mθ)·row(l − m) + sin(mθ)·row(l + m)``."""
    order = torch.arange(-l, l + 1, device=matrices.device)
    sign = torch.where(order < 0, 1.0, -1.0).to(matrices.dtype)
    phase = angle[:, None] * order.abs().to(matrices.dtype)  # (E, 2l+1)
    return torch.cos(phase)[..., None] * matrices + (sign * torch.sin(phase))[..., None] * matrices.flip(-2)


@cache
def _y_to_x(l: int, device: torch.device) -> Tensor:
    """e3nn's float64 Wigner-D of the rotation taking ŷ to x̂ (so ``D exp(βY) Dᵀ = exp(βX)``)."""
    o3 = require_e3nn()
    with default_dtype(torch.float64):
        rotation = torch.tensor([[0.0, 1.0, 0.0], [-1.0, 0.0, 0.0], [0.0, 0.0, 1.0]])  # ŷ → x̂, det 1
        return o3.wigner_D(l, *o3.matrix_to_angles(rotation)).to(device)


def _block_diagonal(blocks: list[Tensor]) -> Tensor:
    """``(E, n_l, n_l)`` blocks → ``(E, Σ n_l, Σ n_l)`` block-diagonal matrices."""
    size = sum(b.shape[-1] for b in blocks)
    out = blocks[0].new_zeros(blocks[0].shape[0], size, size)
    start = 0
    for block in blocks:
        n = block.shape[-1]
        out[:, start : start + n, start : start + n] = block
        start += n
    return out


@contextmanager
def default_dtype(dtype: torch.dtype) -> Iterator[None]:
    """Run e3nn constructors in ``dtype`` (float64 inputs need float64 generators and Clebsch–Gordan tables)."""
    previous = torch.get_default_dtype()
    torch.set_default_dtype(dtype if dtype.is_floating_point and dtype.itemsize >= 4 else previous)
    try:
        yield
    finally:
        torch.set_default_dtype(previous)


def to_irreps_array(x: Tensor) -> Tensor:
    """``(…, (L + 1)², C)`` spherical channels → e3nn's ``C x 0e + C x 1e + … + C x Le`` array ``(…, C·(L + 1)²)``."""
    lmax = math.isqrt(x.shape[-2]) - 1
    blocks = [x[..., l * l : (l + 1) ** 2, :].transpose(-1, -2).flatten(-2) for l in range(lmax + 1)]  # (…, C·(2l+1))
    return torch.cat(blocks, dim=-1)


def from_irreps_array(x: Tensor, channels: int) -> Tensor:
    """The inverse of :func:`to_irreps_array`: ``(…, C·(L + 1)²)`` → ``(…, (L + 1)², C)``."""
    lmax = math.isqrt(x.shape[-1] // channels) - 1
    blocks, start = [], 0
    for l in range(lmax + 1):
        width = channels * (2 * l + 1)
        block = x[..., start : start + width].unflatten(-1, (channels, 2 * l + 1))  # (…, C, 2l+1)
        blocks.append(block.transpose(-1, -2))
        start += width
    return torch.cat(blocks, dim=-2)


@OPS.register(NAME, kind="equivariant", dims=(3,), papers=("escn",))
class ESCNConv(nn.Module):
    """eSCN (S1): SO(3) edge convolution as SO(2) linear maps per order m in each edge's frame (e3nn Wigner-D).

    ``ESCNConv(in_channels, out_channels, kernel_size=lmax, *, mmax=2, radial_features=0)`` maps source-node
    features ``(V, (L + 1)², C_in)`` along edges to target nodes ``(V, (L + 1)², C_out)``:
    ``forward(x, edge_index (2, E) [source; target], edge_vec (E, 3), edge_scalars=None, frame=None)`` sums
    the messages at each target. ``kernel_size`` is the degree L of the irreps (``create_op("escn", …)``'s
    default 3; the paper uses L = 6, m_max = 2); ``stride`` must be 1; ``dim`` must be 3.
    ``radial_features > 0`` gives each edge a learned multiplier of every input coefficient, the same for
    ``±m`` (so equivariance holds), from ``edge_scalars (E, radial_features)`` (e.g. a radial basis of the
    edge length), as eSCN modulates its SO(2) inputs. ``bias`` adds a learned constant to the degree-0
    output (the only invariant one).
    """

    def __init__(
        self,
        in_channels,
        out_channels,
        kernel_size=3,
        stride=1,
        *,
        dim=3,
        bias=True,
        mmax=2,
        radial_features=0,
    ):
        super().__init__()
        require_e3nn()
        check_int(in_channels, "in_channels", NAME)
        check_int(out_channels, "out_channels", NAME)
        self.lmax = check_int(kernel_size, "kernel_size (the degree L of the irreps)", NAME, low=0)
        check_int(stride, "stride", NAME, high=1)
        check_int(dim, "dim", NAME, low=3, high=3)
        self.mmax = min(check_int(mmax, "mmax", NAME, low=0), self.lmax)
        self.radial_features = check_int(radial_features, "radial_features", NAME, low=0)
        self.in_channels, self.out_channels = in_channels, out_channels
        self.index, self.blocks = so2_order_index(self.lmax, self.mmax)
        self.num_kept = len(self.index)
        self.weights = nn.ParameterList()
        for m, _, count in self.blocks:
            fan_in = count * in_channels * (1 if m == 0 else 2)
            shape = (count * in_channels, count * out_channels * (1 if m == 0 else 2))  # [W_r | W_i] for m > 0
            self.weights.append(nn.Parameter(torch.randn(shape) / math.sqrt(fan_in)))
        self.bias = nn.Parameter(torch.zeros(out_channels)) if bias else None
        # one radial multiplier per (m, l, channel), shared by +m and -m so each pair still rotates as one number
        shared = [
            start_slot + i
            for start_slot, (m, _, count) in zip(_starts(self.blocks), self.blocks, strict=True)
            for i in list(range(count)) * (1 if m == 0 else 2)
        ]
        self.register_buffer("radial_slot", torch.tensor(shared, dtype=torch.long), persistent=False)
        slots = sum(count for _, _, count in self.blocks)
        self.radial = nn.Linear(radial_features, slots * in_channels) if radial_features else None

    def frame(self, edge_vec: Tensor) -> EdgeFrame:
        return edge_frame(edge_vec, self.lmax, self.mmax)

    def edge_messages(self, x_edge: Tensor, frame: EdgeFrame, edge_scalars: Tensor | None = None) -> Tensor:
        """One message per edge, ``D · SO2(Dᵀ · x_edge)``: ``(E, (L + 1)², C_in)`` → ``(E, (L + 1)², C_out)``."""
        if frame.lmax != self.lmax or frame.mmax < self.mmax:
            raise ValueError(f"{NAME}: frame for L={frame.lmax}, m_max={frame.mmax}; this op has {self.extra_repr()}")
        to_frame = frame.to_frame if frame.mmax == self.mmax else frame.to_frame[:, : self.num_kept]
        x_frame = torch.bmm(to_frame, x_edge)  # (E, K, C_in): edge-frame coefficients with |m| ≤ m_max
        if self.radial is not None:
            if edge_scalars is None or edge_scalars.shape != (x_edge.shape[0], self.radial_features):
                got = None if edge_scalars is None else tuple(edge_scalars.shape)
                raise ValueError(f"{NAME}: needs edge_scalars ({x_edge.shape[0]}, {self.radial_features}), got {got}")
            multiplier = self.radial(edge_scalars).view(x_edge.shape[0], -1, self.in_channels)  # (E, slots, C_in)
            x_frame = x_frame * multiplier[:, self.radial_slot]  # (E, K, C_in)
        y_frame = self.so2(x_frame)  # (E, K, C_out)
        return torch.bmm(to_frame.transpose(1, 2), y_frame)  # (E, D, C_out)

    def so2(self, x_frame: Tensor) -> Tensor:
        """The SO(2) linear maps per order: ``(E, K, C_in)`` → ``(E, K, C_out)`` in :func:`so2_order_index` order."""
        edges = x_frame.shape[0]
        outputs = []
        for (m, start, count), weight in zip(self.blocks, self.weights, strict=True):
            if m == 0:
                y0 = (x_frame[:, start : start + count].reshape(edges, -1) @ weight).view(edges, count, -1)
                if self.bias is not None:  # (E, L+1, C_out): only degree 0 is invariant, so only it takes a bias
                    y0 = torch.cat([y0[:, :1] + self.bias, y0[:, 1:]], dim=1)
                outputs.append(y0)
                continue
            pair = x_frame[:, start : start + 2 * count].reshape(edges, 2, count * self.in_channels)  # (E, ±, F_in)
            both = pair.transpose(0, 1).reshape(2 * edges, -1) @ weight  # (2E, 2·F_out): [x₊; x₋] @ [W_r | W_i]
            width = count * self.out_channels
            plus, minus = both[:edges], both[edges:]
            y_plus = plus[:, :width] - minus[:, width:]  # x₊ W_r − x₋ W_i
            y_minus = plus[:, width:] + minus[:, :width]  # x₊ W_i + x₋ W_r
            outputs.append(torch.stack([y_plus, y_minus], 1).view(edges, 2 * count, self.out_channels))
        return torch.cat(outputs, dim=1)

    def forward(
        self,
        x: Tensor,
        edge_index: Tensor,
        edge_vec: Tensor | None = None,
        edge_scalars: Tensor | None = None,
        frame: EdgeFrame | None = None,
    ) -> Tensor:
        dim = (self.lmax + 1) ** 2
        if x.dim() != 3 or x.shape[1] != dim or x.shape[2] != self.in_channels:
            raise ValueError(
                f"{NAME}: expected node features (V, (L+1)²={dim}, C_in={self.in_channels}), got {tuple(x.shape)}"
            )
        if edge_index.dim() != 2 or edge_index.shape[0] != 2:
            raise ValueError(f"{NAME}: edge_index must be (2, E) [source; target], got {tuple(edge_index.shape)}")
        if frame is None:
            if edge_vec is None:
                raise ValueError(f"{NAME}: needs edge_vec (E, 3) or a precomputed frame")
            frame = self.frame(edge_vec.to(x.dtype))
        if frame.num_edges != edge_index.shape[1]:
            raise ValueError(f"{NAME}: {edge_index.shape[1]} edges in edge_index but {frame.num_edges} in the frame")
        if frame.to_frame.dtype != x.dtype:
            frame = replace(frame, to_frame=frame.to_frame.to(x.dtype))
        messages = self.edge_messages(x[edge_index[0]], frame, edge_scalars)  # (E, D, C_out)
        out = x.new_zeros(x.shape[0], dim, self.out_channels)
        return out.index_add_(0, edge_index[1], messages)  # (V, D, C_out): sum of incoming messages

    def extra_repr(self) -> str:
        radial = f", radial_features={self.radial_features}" if self.radial_features else ""
        return (
            f"{self.in_channels}, {self.out_channels}, lmax={self.lmax}, mmax={self.mmax}{radial}, "
            f"bias={self.bias is not None}"
        )


def _starts(blocks: list[tuple[int, int, int]]) -> list[int]:
    """Offset of each order's shared (one sign) slots: 0, L+1, L+1 + L, …"""
    offsets, total = [], 0
    for _, _, count in blocks:
        offsets.append(total)
        total += count
    return offsets


def load_tensor_product_(conv: ESCNConv, tp: nn.Module) -> ESCNConv:
    """Write the SO(2) weights equal to an e3nn ``FullyConnectedTensorProduct`` with the edge harmonics into ``conv``.

    ``tp`` maps ``C_in x (0e + … + Le)`` ⊗ ``(0e + … + L_f e)`` → ``C_out x (0e + … + Le)`` and is applied to
    ``(x_source, Y(r̂))`` with e3nn's ``spherical_harmonics(..., normalize=True, normalization="component")``.
    In the edge frame ``Y_{l_f}(ŷ) = √(2 l_f + 1)`` at ``m_f = 0`` only, so each path ``(l_i, l_f, l_o)`` with
    channel weights ``h`` and e3nn path weight ``α`` contributes (the paper's weight map)::

        W_r[l_i, l_o] += α √(2l_f+1) h ⊗ C[l_i, +m; l_f, 0; l_o, +m]
        W_i[l_i, l_o] += α √(2l_f+1) h ⊗ C[l_i, +m; l_f, 0; l_o, −m]       (C: e3nn's wigner_3j)

    The bias is set to zero. With ``conv.mmax == L`` the op then equals the tensor product on every edge; a
    smaller ``mmax`` drops the orders above it (the paper's truncation).
    """
    o3 = require_e3nn()
    lmax, c_in, c_out = conv.lmax, conv.in_channels, conv.out_channels
    with torch.no_grad():
        weights = [torch.zeros_like(w, dtype=torch.float64) for w in conv.weights]
        for ins, h in zip(tp.instructions, tp.weight_views(), strict=True):
            mul_in, (l_in, _) = tp.irreps_in1[ins.i_in1]
            _, (l_f, _) = tp.irreps_in2[ins.i_in2]
            mul_out, (l_out, _) = tp.irreps_out[ins.i_out]
            if (mul_in, mul_out) != (c_in, c_out) or max(l_in, l_out) > lmax:
                raise ValueError(f"{NAME}: tensor product path {ins} does not fit {conv.extra_repr()}")
            cg = o3.wigner_3j(l_in, l_f, l_out, dtype=torch.float64)[:, l_f, :]  # (2l_i+1, 2l_o+1) at m_f = 0
            scale = ins.path_weight * math.sqrt(2 * l_f + 1)
            h = h.detach().double()[:, 0, :] * scale  # (C_in, C_out)
            for (m, _, count), w in zip(conv.blocks, weights, strict=True):
                if l_in < m or l_out < m:
                    continue
                i, o = l_in - m, l_out - m  # positions of degrees l_i, l_o within order m's block
                w_view = w.view(count, c_in, -1, count, c_out)  # (l_i, C_in, [r | i], l_o, C_out)
                w_view[i, :, 0, o] += cg[l_in + m, l_out + m] * h
                if m > 0:
                    w_view[i, :, 1, o] += cg[l_in + m, l_out - m] * h
        for target, source in zip(conv.weights, weights, strict=True):
            target.copy_(source)
        if conv.bias is not None:
            conv.bias.zero_()
    return conv
