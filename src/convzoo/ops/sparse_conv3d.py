"""Sparse 3-D convolution on voxel coordinates, submanifold and regular (S43's base operators).

Input contract (not the grid contract of :mod:`convzoo.ops.base`): a :class:`Voxels` holds
``coords (M, 4)`` int64 rows ``[batch, x, y, z]``, ``feats (M, C)`` floats, the grid ``shape (X, Y, Z)`` and
``batch_size``; every coordinate lies inside the grid and no site appears twice. A site not listed holds zero
features. The operators map ``Voxels`` with ``C_in`` features to ``Voxels`` with ``C_out``:

- *submanifold* (Graham et al.): the output sites are the input sites; ``y_p = Σ_k W_k x_{p + k - c}`` over the
  taps ``k`` of the kernel whose site ``p + k - c`` is active (``c = K // 2``, the centre; stride 1);
- *regular*: every site of the output grid that any active input reaches is active, with the output grid and
  values of dense ``conv3d(stride, padding, dilation)`` applied to the zero-filled grid.

Both equal dense ``conv3d`` on the zero-filled grid read at the output sites (``tests/ops/test_sparse_conv3d.py``).

A *rulebook* lists, for every kernel tap, the pairs (input row, output row) it connects; it depends only on the
coordinates and the geometry, so it is built once per coordinate tensor and reused by every layer and every
call that sees the same ``coords`` tensor (:func:`rulebook`: a cache keyed on the tensor's identity, dropped
with the tensor and rebuilt after an in-place change). The convolution is gather → matrix product → scatter-add
per tap (or, where most taps of most sites are active, one gather of the neighbourhoods and one GEMM), in
PyTorch, so autograd gives the gradients for features and weights.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor, nn
from torch.utils.weak import WeakIdKeyDictionary

from convzoo.core.validate import check_choice, check_int, check_odd
from convzoo.kernels import sparse_conv3d_native
from convzoo.registry import OPS

__all__ = ["Voxels", "Rulebook", "rulebook", "sparse_conv3d", "SparseConv3d", "to_dense", "from_dense"]

NAME = "sparse_conv3d"
MODES = ("submanifold", "regular")
DENSE_TABLE = 0.25  # pairs / (outputs · taps) from which one gather + one GEMM beats per-tap products


@dataclass(frozen=True)
class Voxels:
    """Active sites of a batch of 3-D grids: ``coords (M, 4)`` int64 ``[batch, x, y, z]``, ``feats (M, C)``,
    the grid ``shape (X, Y, Z)`` and ``batch_size``."""

    coords: Tensor
    feats: Tensor
    shape: tuple[int, int, int]
    batch_size: int

    def __post_init__(self) -> None:
        c, f = self.coords, self.feats
        if c.dim() != 2 or c.shape[1] != 4 or c.dtype != torch.int64:
            raise ValueError(f"voxels: coords must be (M, 4) int64 [batch, x, y, z], got {tuple(c.shape)} {c.dtype}")
        if f.dim() != 2 or f.shape[0] != c.shape[0]:
            raise ValueError(f"voxels: feats must be (M, C) with M = {c.shape[0]} rows, got {tuple(f.shape)}")
        if len(self.shape) != 3 or any(not isinstance(s, int) or s < 1 for s in self.shape):
            raise ValueError(f"voxels: shape must be three positive ints (X, Y, Z), got {self.shape!r}")
        check_int(self.batch_size, "batch_size", "voxels")

    def replace(self, feats: Tensor) -> Voxels:
        """The same sites with other features ``(M, C')``."""
        return Voxels(self.coords, feats, self.shape, self.batch_size)


def _keys(coords: Tensor, shape: Sequence[int]) -> Tensor:
    """One int64 per site, ordered like ``coords`` rows: ``((b · X + x) · Y + y) · Z + z``."""
    b, x, y, z = coords.unbind(1)
    return ((b * shape[0] + x) * shape[1] + y) * shape[2] + z


def _check_coords(coords: Tensor, shape: Sequence[int], batch_size: int, owner: str) -> tuple[Tensor, Tensor]:
    """Sorted site keys and the order that sorts them; raises on a site outside the grid or listed twice."""
    if coords.shape[0]:
        low = coords.min(0).values
        high = coords.max(0).values
        limits = torch.tensor([batch_size, *shape])
        if bool((low < 0).any()) or bool((high >= limits).any()):
            raise ValueError(
                f"{owner}: coords must lie in [0, {batch_size}) x [0, {shape[0]}) x [0, {shape[1]}) x [0, {shape[2]}), "
                f"got a range of {low.tolist()} to {high.tolist()}"
            )
    keys, order = torch.sort(_keys(coords, shape))
    if keys.numel() > 1 and bool((keys[1:] == keys[:-1]).any()):
        row = int(order[1:][keys[1:] == keys[:-1]][0])
        raise ValueError(f"{owner}: coords must not repeat a site, got {coords[row].tolist()} twice")
    return keys, order


def _lookup(sorted_keys: Tensor, order: Tensor, query: Tensor) -> Tensor:
    """Row of each ``query`` key among the sites (``-1`` where it is not active)."""
    if sorted_keys.numel() == 0:
        return torch.full_like(query, -1)
    pos = torch.searchsorted(sorted_keys, query).clamp_(max=sorted_keys.numel() - 1)
    return torch.where(sorted_keys[pos] == query, order[pos], -1)


@dataclass(frozen=True)
class Rulebook:
    """The pairs (input row, output row) of every kernel tap, grouped by tap (row-major over ``(kx, ky, kz)``):
    ``in_rows (P,)``, ``out_rows (P,)`` and ``counts`` (pairs per tap, summing to P); the same as a neighbour
    ``table (M_out, T)``; the output ``coords (M_out, 4)`` and grid ``shape``."""

    in_rows: Tensor
    out_rows: Tensor
    counts: tuple[int, ...]
    coords: Tensor
    shape: tuple[int, int, int]
    table: Tensor  # (M_out, T): the input row of each output's tap, M_in where it has none

    @classmethod
    def from_pairs(
        cls, tap: Tensor, in_rows: Tensor, out_rows: Tensor, taps: int, inputs: int, coords: Tensor, shape
    ) -> Rulebook:
        """From unordered pairs ``(tap, in_row, out_row)`` among ``inputs`` input rows."""
        order = torch.sort(tap, stable=True).indices
        counts = torch.bincount(tap, minlength=taps).tolist()
        table = torch.full((coords.shape[0], taps), inputs, dtype=torch.int64)
        table[out_rows, tap] = in_rows
        return cls(in_rows[order], out_rows[order], tuple(counts), coords, tuple(shape), table)

    @property
    def pairs(self) -> tuple[tuple[Tensor, Tensor], ...]:
        """``(in_rows, out_rows)`` of each tap."""
        return tuple(zip(self.in_rows.split(self.counts), self.out_rows.split(self.counts), strict=True))


def _offsets(kernel_size: Sequence[int]) -> Tensor:
    """The kernel taps ``(K³, 3)``, row-major, as in ``conv3d``'s weight ``(C_out, C_in, kx, ky, kz)``."""
    return torch.tensor(list(itertools.product(*(range(k) for k in kernel_size))), dtype=torch.int64)


def _submanifold(coords: Tensor, shape, batch_size, kernel_size, dilation) -> Rulebook:
    keys, order = _check_coords(coords, shape, batch_size, NAME)
    taps = _offsets(kernel_size)
    centre = torch.tensor([k // 2 for k in kernel_size])
    delta = (taps - centre) * torch.tensor(dilation)  # (T, 3)
    neighbour = coords[None, :, 1:] + delta[:, None, :]  # (T, M, 3)
    inside = ((neighbour >= 0) & (neighbour < torch.tensor(shape))).all(-1)  # (T, M)
    query = _keys(torch.cat([coords[None, :, :1].expand(len(taps), -1, -1), neighbour], -1).view(-1, 4), shape)
    rows = _lookup(keys, order, query).view(len(taps), -1)  # (T, M): input row feeding output row m
    rows = torch.where(inside, rows, -1)
    tap, out_rows = (rows >= 0).nonzero(as_tuple=True)  # tap-major
    return Rulebook.from_pairs(tap, rows[tap, out_rows], out_rows, len(taps), len(coords), coords, shape)


def _regular(coords: Tensor, shape, batch_size, kernel_size, stride, padding, dilation) -> Rulebook:
    _check_coords(coords, shape, batch_size, NAME)
    out_shape = tuple(
        (s + 2 * p - d * (k - 1) - 1) // st + 1
        for s, k, st, p, d in zip(shape, kernel_size, stride, padding, dilation, strict=True)
    )
    if any(s < 1 for s in out_shape):
        raise ValueError(
            f"{NAME}: the grid {shape} is smaller than the kernel {tuple(kernel_size)}, output {out_shape}"
        )
    taps = _offsets(kernel_size)
    # o · stride = i + padding - k · dilation for the output o that tap k of input i feeds
    num = coords[None, :, 1:] + torch.tensor(padding) - taps[:, None, :] * torch.tensor(dilation)  # (T, M, 3)
    st = torch.tensor(stride)
    out = torch.div(num, st, rounding_mode="floor")
    valid = ((num % st) == 0).all(-1) & ((out >= 0) & (out < torch.tensor(out_shape))).all(-1)  # (T, M)
    tap_index, in_index = valid.nonzero(as_tuple=True)
    out_coords = torch.cat([coords[in_index, :1], out[tap_index, in_index]], 1)  # (P, 4)
    out_keys = _keys(out_coords, out_shape)
    unique_keys, out_index = torch.unique(out_keys, sorted=True, return_inverse=True)
    site = torch.empty(unique_keys.numel(), 4, dtype=torch.int64)
    site[out_index] = out_coords
    return Rulebook.from_pairs(tap_index, in_index, out_index, len(taps), len(coords), site, out_shape)


_CACHE: WeakIdKeyDictionary = WeakIdKeyDictionary()


def rulebook(
    voxels: Voxels,
    kernel_size: Sequence[int],
    *,
    mode: str = "submanifold",
    stride: Sequence[int] = (1, 1, 1),
    padding: Sequence[int] | None = None,
    dilation: Sequence[int] = (1, 1, 1),
) -> Rulebook:
    """The rulebook of ``voxels.coords`` for this geometry, from the cache when this tensor had one built.

    ``padding`` defaults to ``dilation · (K - 1) / 2`` (the submanifold centre; "same" for odd K at stride 1).
    The cache holds one entry per live coordinate tensor (keyed by identity, dropped when the tensor is freed)
    and, in it, one rulebook per geometry; an in-place change of the tensor (its version counter) rebuilds.
    """
    check_choice(mode, MODES, "mode", NAME)
    kernel_size, stride, dilation = tuple(kernel_size), tuple(stride), tuple(dilation)
    padding = (
        tuple(d * (k - 1) // 2 for k, d in zip(kernel_size, dilation, strict=True))
        if padding is None
        else tuple(padding)
    )
    if mode == "submanifold" and stride != (1, 1, 1):
        raise ValueError(f"{NAME}: a submanifold convolution keeps its sites, so stride must be 1, got {stride}")
    coords = voxels.coords
    geometry = (mode, kernel_size, stride, padding, dilation, voxels.shape, voxels.batch_size)
    version, books = _CACHE.get(coords, (None, {}))
    if version != coords._version:
        books = {}
        _CACHE[coords] = (coords._version, books)
    if geometry not in books:
        if mode == "submanifold":
            books[geometry] = _submanifold(coords, voxels.shape, voxels.batch_size, kernel_size, dilation)
        else:
            books[geometry] = _regular(coords, voxels.shape, voxels.batch_size, kernel_size, stride, padding, dilation)
    return books[geometry]


def sparse_conv3d(feats: Tensor, weight: Tensor, book: Rulebook, bias: Tensor | None = None) -> Tensor:
    """Features ``(M_in, C_in)`` → ``(M_out, C_out)`` along ``book``; ``weight (C_out, C_in, kx, ky, kz)`` as
    ``conv3d``'s, ``bias (C_out,)`` added at every output site.

    Without autograd, float32 and the native kernel built (:mod:`convzoo.kernels.sparse_conv3d_native`): one fused
    pass over the neighbour table. Otherwise, in PyTorch: sparse rulebooks run one gather of every pair's input row,
    one matrix product per tap on its slice and one scatter-add; dense ones (at least a quarter of the table
    active) one gather of the ``(M_out, T, C_in)`` neighbourhoods (a zero row where a tap has no input) and one
    ``(M_out, T·C_in) @ (T·C_in, C_out)`` product.
    """
    c_out = weight.shape[0]
    taps = weight.flatten(2).permute(2, 1, 0)  # (T, C_in, C_out)
    wants_grad = torch.is_grad_enabled() and any(t is not None and t.requires_grad for t in (feats, weight, bias))
    if sparse_conv3d_native.available() and not wants_grad and feats.dtype == weight.dtype == torch.float32:
        return sparse_conv3d_native.gather_conv(
            feats.contiguous(), book.table, taps.contiguous(), None if bias is None else bias.contiguous()
        )
    if book.in_rows.numel() >= DENSE_TABLE * book.table.numel():
        padded = torch.cat([feats, feats.new_zeros(1, feats.shape[1])])  # (M_in + 1, C_in)
        rows = padded.index_select(0, book.table.flatten())  # (M_out · T, C_in)
        neighbourhoods = rows.view(len(book.table), book.table.shape[1] * feats.shape[1])  # (M_out, T·C_in)
        out = neighbourhoods @ taps.reshape(-1, c_out)  # (M_out, C_out)
        return out if bias is None else out + bias
    gathered = feats.index_select(0, book.in_rows)  # (P, C_in), grouped by tap
    products = [part @ taps[t] for t, part in enumerate(gathered.split(book.counts)) if part.shape[0]]
    out = feats.new_zeros(book.coords.shape[0], c_out)
    if products:
        out = out.index_add(0, book.out_rows, torch.cat(products))  # (M_out, C_out)
    return out if bias is None else out + bias


@OPS.register(NAME, kind="sparse", dims=(3,), papers=("focal-sparse-conv",))
class SparseConv3d(nn.Module):
    """Sparse 3-D convolution on voxels (S43's base operator): submanifold or regular, with a cached rulebook.

    ``SparseConv3d(in_channels, out_channels, kernel_size=3, stride=1, *, dim=3, bias=True,
    mode="submanifold", dilation=1, padding=None)`` maps :class:`Voxels` ``(M, C_in)`` to :class:`Voxels`
    ``(M_out, C_out)``: the same sites (``mode="submanifold"``, stride 1, odd kernel) or every site of the
    ``conv3d`` output grid that an active input reaches (``mode="regular"``; ``padding`` defaults to
    ``dilation · (K - 1) / 2``). The weight is ``conv3d``'s ``(C_out, C_in, kx, ky, kz)``.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int | Sequence[int] = 3,
        stride: int | Sequence[int] = 1,
        *,
        dim: int = 3,
        bias: bool = True,
        mode: str = "submanifold",
        dilation: int | Sequence[int] = 1,
        padding: int | Sequence[int] | None = None,
    ) -> None:
        super().__init__()
        check_int(in_channels, "in_channels", NAME)
        check_int(out_channels, "out_channels", NAME)
        if dim != 3:
            raise ValueError(f"{NAME}: works on 3-d voxel grids, so dim must be 3, got {dim!r}")
        self.mode = check_choice(mode, MODES, "mode", NAME)
        self.kernel_size = _triple(kernel_size, "kernel_size")
        self.stride = _triple(stride, "stride")
        self.dilation = _triple(dilation, "dilation")
        self.padding = None if padding is None else _triple(padding, "padding", low=0)
        if mode == "submanifold":
            for k in self.kernel_size:
                check_odd(k, "kernel_size (submanifold)", NAME)
            if self.stride != (1, 1, 1) or self.padding is not None:
                raise ValueError(
                    f"{NAME}: a submanifold convolution keeps its sites: stride must be 1 and padding unset, "
                    f"got stride={stride!r}, padding={padding!r}"
                )
        self.in_channels, self.out_channels = in_channels, out_channels
        self.weight = nn.Parameter(torch.empty(out_channels, in_channels, *self.kernel_size))
        self.bias = nn.Parameter(torch.zeros(out_channels)) if bias else None
        nn.init.kaiming_uniform_(self.weight, a=math.sqrt(5))

    def rulebook(self, x: Voxels) -> Rulebook:
        return rulebook(
            x, self.kernel_size, mode=self.mode, stride=self.stride, padding=self.padding, dilation=self.dilation
        )

    def forward(self, x: Voxels) -> Voxels:
        if not isinstance(x, Voxels):
            raise TypeError(f"{NAME}: expected Voxels (coords (M, 4), feats (M, C)), got {type(x).__name__}")
        if x.feats.shape[1] != self.in_channels:
            raise ValueError(f"{NAME}: expected {self.in_channels} feature channels, got {x.feats.shape[1]}")
        book = self.rulebook(x)
        feats = sparse_conv3d(x.feats, self.weight, book, self.bias)
        return Voxels(book.coords, feats, book.shape, x.batch_size)

    def extra_repr(self) -> str:
        return (
            f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, mode={self.mode}, "
            f"stride={self.stride}, dilation={self.dilation}"
        )


def _triple(value: int | Sequence[int], what: str, *, low: int = 1) -> tuple[int, int, int]:
    values = (value,) * 3 if isinstance(value, int) and not isinstance(value, bool) else tuple(value)
    if len(values) != 3:
        raise ValueError(f"{NAME}: {what} must be an int or three ints, got {value!r}")
    for v in values:
        check_int(v, what, NAME, low=low)
    return values  # type: ignore[return-value]


def to_dense(x: Voxels) -> Tensor:
    """The zero-filled grid ``(N, C, X, Y, Z)`` of ``x``."""
    dense = x.feats.new_zeros(x.batch_size, *x.shape, x.feats.shape[1])  # (N, X, Y, Z, C)
    b, i, j, k = x.coords.unbind(1)
    dense = dense.index_put((b, i, j, k), x.feats)
    return dense.permute(0, 4, 1, 2, 3)


def from_dense(dense: Tensor, coords: Tensor) -> Tensor:
    """Features ``(M, C)`` of the grid ``dense (N, C, X, Y, Z)`` at ``coords (M, 4)``."""
    b, i, j, k = coords.unbind(1)
    return dense.permute(0, 2, 3, 4, 1)[b, i, j, k]
