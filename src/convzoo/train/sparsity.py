"""STen (S55, Ivanov et al., "STen: Productive and Efficient Sparsity in PyTorch"): sparsity layouts, sparsifiers
and a training pipeline in which the sparsity pattern survives optimizer steps.

Every weight is seen as a matrix ``(C_out, C_in · k…)`` (a conv weight flattened after its first dim).

**Layouts** — compressed tensors that hold their pattern (:func:`to_layout`):

- :class:`Unstructured`: CSR (row pointers, column indices, values);
- :class:`NM`: grouped ``n:m`` — every run of ``m`` consecutive columns holds at most ``n`` nonzeros, stored as
  ``(rows, groups, n)`` values and in-group offsets (STen's grouped n:m layout for CPU inference);
- :class:`Block`: ``(bh, bw)`` blocks, each kept whole or dropped (block coordinates + dense blocks).

Each has ``to_dense()``, ``mask()``, ``nbytes()`` and ``add_(update)``, which adds a dense update on the pattern
only, so arithmetic on the layout keeps the pattern by construction (STen's "sparse tensors keep their layout
through operators").

**Sparsifiers** (masks, from the weights): :func:`magnitude_mask` (the ``round(s · numel)`` smallest ``|w|``
pruned), :func:`nm_mask` (the ``n`` largest of each group of ``m``), :func:`block_mask` (blocks ranked by L2
norm); schedules: :func:`cubic_sparsity` (Zhu & Gupta's gradual ``s_t = s_f + (s_0 - s_f)(1 - (t - t_0)/T)³``).

**Pipeline**: :class:`MaskSparsifier` is a ``torch.ao.pruning.BaseSparsifier``: ``prepare(model, config)``
registers torch's ``FakeSparsity`` parametrization (``weight = original ⊙ mask``) on each weight, so every
forward, backward and optimizer step sees a masked weight and the gradient of a pruned entry is zero; ``step()``
recomputes the masks from the masked weights (a pruned weight stays pruned: masks only grow), and
``torch.ao.pruning.CubicSL`` drives the gradual schedule through its ``sparsity_level``; ``squash_mask()``
bakes the masks in. :func:`sparsify_model` wires the three together for every conv/linear weight.

What is written here and why: torch's ``WeightNormSparsifier`` ranks 2-d weights only (a 4-d conv weight fails in
its mask reshape), so the mask functions for conv weights, n:m groups along the input dimension and block
norms are convzoo's; the compressed layouts are convzoo's because ``torch.ao.pruning`` keeps masks, not sparse
storage. The parametrization, the sparsifier life cycle and the cubic scheduler are torch's.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn
from torch.ao.pruning import BaseSparsifier, CubicSL

from convzoo.core.validate import check_choice, check_int, check_number

__all__ = [
    "Unstructured",
    "NM",
    "Block",
    "to_layout",
    "magnitude_mask",
    "nm_mask",
    "block_mask",
    "cubic_sparsity",
    "MaskSparsifier",
    "sparsify_model",
    "LAYOUTS",
]

LAYOUTS = ("unstructured", "n:m", "block")


def _matrix(weight: Tensor) -> Tensor:
    """``(C_out, …)`` → ``(C_out, prod(…))``."""
    return weight.reshape(weight.shape[0], -1)


# ---------------------------------------------------------------- sparsifiers (masks)


def magnitude_mask(weight: Tensor, sparsity: float) -> Tensor:
    """Boolean keep-mask of ``weight``'s shape with exactly ``round(sparsity · numel)`` zeros at the smallest
    ``|w|`` (ties by position)."""
    check_number(sparsity, "sparsity", "magnitude_mask", low=0.0, low_open=False, high=1.0)
    flat = weight.detach().abs().flatten()
    pruned = round(sparsity * flat.numel())
    mask = torch.ones(flat.numel(), dtype=torch.bool, device=weight.device)
    if pruned:
        order = torch.sort(flat, stable=True).indices
        mask[order[:pruned]] = False
    return mask.view(weight.shape)


def nm_mask(weight: Tensor, n: int, m: int) -> Tensor:
    """Keep-mask with the ``n`` largest ``|w|`` of every ``m`` consecutive columns of the ``(C_out, -1)`` matrix
    (the column count must be a multiple of ``m``)."""
    check_int(m, "m", "nm_mask")
    check_int(n, "n", "nm_mask", low=0, high=m)
    matrix = _matrix(weight.detach().abs())
    if matrix.shape[1] % m:
        raise ValueError(
            f"nm_mask: the {matrix.shape[1]} columns of the (C_out, -1) weight are not a multiple of m={m}"
        )
    groups = matrix.view(matrix.shape[0], -1, m)  # (rows, groups, m)
    keep = torch.zeros_like(groups, dtype=torch.bool)
    keep.scatter_(2, groups.topk(n, dim=2).indices, True)
    return keep.view(weight.shape)


def block_mask(weight: Tensor, sparsity: float, block: tuple[int, int]) -> Tensor:
    """Keep-mask of whole ``(bh, bw)`` blocks of the ``(C_out, -1)`` matrix: the ``round(sparsity · blocks)``
    blocks of smallest L2 norm are dropped (the matrix must tile into blocks)."""
    check_number(sparsity, "sparsity", "block_mask", low=0.0, low_open=False, high=1.0)
    bh, bw = (check_int(b, "block", "block_mask") for b in block)
    matrix = _matrix(weight.detach())
    rows, cols = matrix.shape
    if rows % bh or cols % bw:
        raise ValueError(f"block_mask: the ({rows}, {cols}) weight matrix does not tile into {bh}×{bw} blocks")
    norms = matrix.view(rows // bh, bh, cols // bw, bw).pow(2).sum((1, 3))  # (rows/bh, cols/bw)
    keep_blocks = magnitude_mask(norms, sparsity)
    keep = keep_blocks[:, None, :, None].expand(-1, bh, -1, bw)  # (rows/bh, bh, cols/bw, bw)
    return keep.reshape(weight.shape)


def cubic_sparsity(step: int, total_steps: int, final: float, initial: float = 0.0, begin: int = 0) -> float:
    """Zhu & Gupta's gradual schedule: ``final + (initial - final)(1 - (step - begin)/total_steps)³``, held at
    ``initial`` before ``begin`` and at ``final`` after ``begin + total_steps``."""
    check_int(total_steps, "total_steps", "cubic_sparsity")
    progress = min(max((step - begin) / total_steps, 0.0), 1.0)
    return final + (initial - final) * (1.0 - progress) ** 3


# ---------------------------------------------------------------- layouts


@dataclass(frozen=True)
class Unstructured:
    """CSR of the ``(C_out, -1)`` matrix: ``row_ptr (R + 1,)``, ``cols (nnz,)``, ``values (nnz,)``."""

    shape: tuple[int, ...]
    row_ptr: Tensor
    cols: Tensor
    values: Tensor

    @classmethod
    def from_dense(cls, weight: Tensor) -> Unstructured:
        matrix = _matrix(weight.detach())
        rows, cols = matrix.nonzero(as_tuple=True)  # row-major: CSR order
        row_ptr = torch.cat([torch.zeros(1, dtype=torch.int64), torch.bincount(rows, minlength=len(matrix)).cumsum(0)])
        return cls(tuple(weight.shape), row_ptr, cols.to(torch.int32), matrix[rows, cols].clone())

    def _rows(self) -> Tensor:
        return torch.repeat_interleave(torch.arange(len(self.row_ptr) - 1), self.row_ptr.diff())

    def mask(self) -> Tensor:
        keep = torch.zeros(self.shape[0], _columns(self.shape), dtype=torch.bool)
        keep[self._rows(), self.cols.long()] = True
        return keep.view(self.shape)

    def to_dense(self) -> Tensor:
        dense = self.values.new_zeros(self.shape[0], _columns(self.shape))
        dense[self._rows(), self.cols.long()] = self.values
        return dense.view(self.shape)

    def add_(self, update: Tensor) -> Unstructured:
        """``self += update`` on the pattern (entries off the pattern are ignored)."""
        self.values.add_(_matrix(update)[self._rows(), self.cols.long()])
        return self

    def nbytes(self) -> int:
        return sum(t.numel() * t.element_size() for t in (self.row_ptr, self.cols, self.values))


@dataclass(frozen=True)
class NM:
    """Grouped ``n:m`` of the ``(C_out, -1)`` matrix: ``values (R, G, n)`` and in-group ``offsets (R, G, n)``
    (int8; ``G = columns / m``). A group with fewer than ``n`` nonzeros stores zeros in its spare slots."""

    shape: tuple[int, ...]
    n: int
    m: int
    values: Tensor
    offsets: Tensor

    @classmethod
    def from_dense(cls, weight: Tensor, n: int, m: int) -> NM:
        matrix = _matrix(weight.detach())
        if matrix.shape[1] % m:
            raise ValueError(f"NM: the {matrix.shape[1]} columns are not a multiple of m={m}")
        groups = matrix.view(matrix.shape[0], -1, m)  # (R, G, m)
        counts = (groups != 0).sum(2)
        if bool((counts > n).any()):
            raise ValueError(f"NM: a group of {m} holds {int(counts.max())} nonzeros, more than n={n}")
        # nonzeros first (stable), then pad with zero entries: the first n slots hold every nonzero
        offsets = torch.sort((groups == 0).to(torch.int8), dim=2, stable=True).indices[..., :n]
        return cls(tuple(weight.shape), n, m, groups.gather(2, offsets).clone(), offsets.to(torch.int8))

    def mask(self) -> Tensor:
        return self.to_dense() != 0

    def to_dense(self) -> Tensor:
        rows, groups = self.values.shape[:2]
        dense = self.values.new_zeros(rows, groups, self.m).scatter(2, self.offsets.long(), self.values)
        return dense.view(self.shape)

    def add_(self, update: Tensor) -> NM:
        groups = _matrix(update).view(*self.values.shape[:2], self.m)
        self.values.add_(groups.gather(2, self.offsets.long()))
        return self

    def nbytes(self) -> int:
        return self.values.numel() * self.values.element_size() + self.offsets.numel()


@dataclass(frozen=True)
class Block:
    """``(bh, bw)`` blocks of the ``(C_out, -1)`` matrix: ``coords (B, 2)`` block row/column, ``blocks (B, bh, bw)``."""

    shape: tuple[int, ...]
    block: tuple[int, int]
    coords: Tensor
    blocks: Tensor

    @classmethod
    def from_dense(cls, weight: Tensor, block: tuple[int, int]) -> Block:
        bh, bw = block
        matrix = _matrix(weight.detach())
        rows, cols = matrix.shape
        if rows % bh or cols % bw:
            raise ValueError(f"Block: the ({rows}, {cols}) matrix does not tile into {bh}×{bw} blocks")
        tiles = matrix.view(rows // bh, bh, cols // bw, bw).transpose(1, 2)  # (rows/bh, cols/bw, bh, bw)
        coords = (tiles != 0).any(-1).any(-1).nonzero()  # (B, 2)
        return cls(tuple(weight.shape), (bh, bw), coords, tiles[coords[:, 0], coords[:, 1]].clone())

    def _tiles(self, like: Tensor) -> Tensor:
        bh, bw = self.block
        return like.new_zeros(self.shape[0] // bh, _columns(self.shape) // bw, bh, bw)

    def _dense(self, tiles: Tensor) -> Tensor:
        bh, bw = self.block
        return tiles.transpose(1, 2).reshape(self.shape)  # (rows/bh, bh, cols/bw, bw) → weight shape

    def mask(self) -> Tensor:
        tiles = self._tiles(torch.zeros((), dtype=torch.bool))
        tiles[self.coords[:, 0], self.coords[:, 1]] = True
        return self._dense(tiles)

    def to_dense(self) -> Tensor:
        tiles = self._tiles(self.blocks)
        tiles[self.coords[:, 0], self.coords[:, 1]] = self.blocks
        return self._dense(tiles)

    def add_(self, update: Tensor) -> Block:
        bh, bw = self.block
        rows, cols = self.shape[0], _columns(self.shape)
        tiles = _matrix(update).view(rows // bh, bh, cols // bw, bw).transpose(1, 2)
        self.blocks.add_(tiles[self.coords[:, 0], self.coords[:, 1]])
        return self

    def nbytes(self) -> int:
        return self.coords.numel() * 4 + self.blocks.numel() * self.blocks.element_size()


def _columns(shape: tuple[int, ...]) -> int:
    columns = 1
    for s in shape[1:]:
        columns *= s
    return columns


def to_layout(weight: Tensor, layout: str, *, n: int = 2, m: int = 4, block: tuple[int, int] = (4, 4)):
    """The nonzeros of ``weight`` in ``layout`` (``"unstructured"``, ``"n:m"`` or ``"block"``)."""
    check_choice(layout, LAYOUTS, "layout", "to_layout")
    if layout == "unstructured":
        return Unstructured.from_dense(weight)
    if layout == "n:m":
        return NM.from_dense(weight, n, m)
    return Block.from_dense(weight, block)


# ---------------------------------------------------------------- pipeline


class MaskSparsifier(BaseSparsifier):
    """A ``torch.ao.pruning`` sparsifier whose masks come from :func:`magnitude_mask`, :func:`nm_mask` or
    :func:`block_mask` (``layout``), computed on the masked weight so a pruned entry stays pruned.

    ``MaskSparsifier(layout="unstructured", sparsity_level=0.5, n=2, m=4, block=(4, 4))``; ``sparsity_level`` is
    the per-group fraction that a scheduler (``CubicSL``) moves; ``n:m`` ignores it.
    """

    def __init__(self, layout: str = "unstructured", sparsity_level: float = 0.5, *, n=2, m=4, block=(4, 4)):
        check_choice(layout, LAYOUTS, "layout", "MaskSparsifier")
        super().__init__(defaults={"layout": layout, "sparsity_level": sparsity_level, "n": n, "m": m, "block": block})

    def update_mask(self, module, tensor_name, layout, sparsity_level, n, m, block, **kwargs):
        weight = getattr(module, tensor_name)  # the masked (parametrized) weight
        mask = module.parametrizations[tensor_name][0].mask
        if layout == "n:m":
            keep = nm_mask(weight, n, m)
        elif layout == "block":
            keep = block_mask(weight, sparsity_level, block)
        else:
            keep = magnitude_mask(weight, sparsity_level)
        mask.copy_(keep & mask.bool())


def sparsify_model(
    model: nn.Module,
    layout: str = "unstructured",
    sparsity: float = 0.5,
    *,
    total_steps: int | None = None,
    frequency: int = 1,
    n: int = 2,
    m: int = 4,
    block: tuple[int, int] = (4, 4),
    skip: tuple[str, ...] = (),
) -> tuple[MaskSparsifier, CubicSL | None]:
    """Prepare every ``nn.Conv*d`` and ``nn.Linear`` weight of ``model`` (in place; modules whose name is in
    ``skip`` excepted) for masked training.

    Without ``total_steps`` the masks are computed at once at ``sparsity``; with it, ``CubicSL`` raises the
    sparsity from 0 to ``sparsity`` over ``total_steps`` scheduler steps (mask updates every ``frequency``).
    Call ``sparsifier.step()`` then ``scheduler.step()`` after optimizer steps; ``sparsifier.squash_mask()`` at
    the end. Returns ``(sparsifier, scheduler or None)``.
    """
    check_number(sparsity, "sparsity", "sparsify_model", low=0.0, low_open=False, high=1.0)
    config = [
        {"tensor_fqn": f"{name}.weight" if name else "weight"}
        for name, module in model.named_modules()
        if isinstance(module, nn.Conv1d | nn.Conv2d | nn.Conv3d | nn.Linear) and name not in skip
    ]
    if not config:
        raise ValueError(f"sparsify_model: {type(model).__name__} holds no conv or linear weight to sparsify")
    gradual = total_steps is not None
    sparsifier = MaskSparsifier(layout, 0.0 if gradual else sparsity, n=n, m=m, block=block)
    sparsifier.prepare(model, config)
    if not gradual:
        sparsifier.step()
        return sparsifier, None
    check_int(total_steps, "total_steps", "sparsify_model")
    for group in sparsifier.groups:
        group["sparsity_level"] = sparsity  # CubicSL reads the final level from here
    scheduler = CubicSL(sparsifier, init_sl=0.0, init_t=0, delta_t=frequency, total_t=total_steps)
    sparsifier.step()
    return sparsifier, scheduler
