"""Focal sparse convolution (S43, Chen et al., "Focal Sparse Convolutional Networks for 3D Object Detection").

A submanifold convolution predicts, at every active site ``p``, ``K³`` importance logits: ``σ`` of the centre
tap's logit is the site's importance ``I_p``, ``σ`` of the others the importance of dilating ``p`` towards that
neighbour. Then (the paper's Eq. 4–6 with its official code's choices):

1. features are multiplied by ``I_p`` (``mask_multi``: the gradient path that trains the importance head);
2. sites with ``I_p > τ`` are *important*: each adds the neighbours ``p + k - c`` whose importance ``≥ τ``
   (inside the grid) as new sites with zero features; the important group is merged site by site (features
   summed, kernel importances averaged, the site's own entry counting 1) and its features are multiplied by that
   average; unimportant sites keep their place and features;
3. a submanifold convolution runs on the union of sites.

So the output sites are the input sites plus the dilation of the important ones only. ``τ = 0.5`` by default
(the paper's threshold). Shapes: :class:`~convzoo.ops.sparse_conv3d.Voxels` ``(M, C_in)`` →
``(M_out, C_out)``, ``M_out ≥ M``, the input sites first in their order.

Departures: the paper supervises ``I_p`` with a focal loss against 3-D boxes and fuses image features (Focals
Conv-F); there are no boxes or images here, so ``forward(x, return_importance=True)`` returns ``I_p`` for a
loss the caller chooses, and no image branch exists. The paper's block adds BatchNorm and ReLU after the
convolution; this operator is the convolution alone, like every convzoo op.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from convzoo.core.validate import check_int, check_number, check_odd
from convzoo.ops.sparse_conv3d import SparseConv3d, Voxels, _keys, _offsets
from convzoo.registry import OPS

__all__ = ["FocalSparseConv3d", "focal_sites"]

NAME = "focal_sparse_conv3d"


def focal_sites(x: Voxels, logits: Tensor, kernel_size: int, threshold: float) -> tuple[Voxels, Tensor]:
    """Steps 1–2: the dilated :class:`Voxels` ``(M_out, C)`` and the site importance ``I (M,)``.

    ``logits (M, K³)``: the importance head's output, taps row-major as ``conv3d``'s kernel (centre ``K³ // 2``).
    """
    taps = _offsets((kernel_size,) * 3)
    centre = len(taps) // 2
    prob = torch.sigmoid(logits)  # (M, K³)
    importance = prob[:, centre]
    feats = x.feats * importance[:, None]
    important = importance > threshold  # (M,)
    # candidate new sites: important p, non-centre tap k with σ ≥ τ, p + k - c inside the grid
    delta = taps - kernel_size // 2  # (K³, 3)
    rows, tap = ((prob >= threshold) & important[:, None]).nonzero(as_tuple=True)
    keep = tap != centre
    rows, tap = rows[keep], tap[keep]
    new_xyz = x.coords[rows, 1:] + delta[tap]  # (P, 3)
    inside = ((new_xyz >= 0) & (new_xyz < torch.tensor(x.shape))).all(1)
    rows, tap, new_xyz = rows[inside], tap[inside], new_xyz[inside]
    new_coords = torch.cat([x.coords[rows, :1], new_xyz], 1)  # (P, 4)

    # output sites: the input sites in their order, then the new ones not among them (sorted)
    in_keys = _keys(x.coords, x.shape)
    new_keys = _keys(new_coords, x.shape)
    extra = torch.unique(new_keys[~torch.isin(new_keys, in_keys)])
    all_keys = torch.cat([in_keys, extra])
    sorted_keys, order = torch.sort(all_keys)
    index_of = lambda k: order[torch.searchsorted(sorted_keys, k)]  # noqa: E731 - row of a site key
    m_out = all_keys.numel()
    out_coords = torch.cat([x.coords, new_coords[_first_of(new_keys, extra)]], 0)

    # the important group, merged per site: Σ features · mean(kernel importance, own entry = 1)
    own = important.nonzero(as_tuple=True)[0]
    new_rows = index_of(new_keys)
    mask_sum = feats.new_zeros(m_out).index_add(0, own, torch.ones_like(importance[own]))
    mask_sum = mask_sum.index_add(0, new_rows, prob[rows, tap])
    count = torch.zeros(m_out, dtype=torch.int64).index_add(0, own, torch.ones_like(own))
    count = count.index_add(0, new_rows, torch.ones_like(new_rows))
    scale = torch.where(count > 0, mask_sum / count.clamp(min=1), torch.zeros_like(mask_sum))
    fore = feats.new_zeros(m_out, feats.shape[1]).index_add(0, own, feats[own]) * scale[:, None]
    back_rows = (~important).nonzero(as_tuple=True)[0]
    out = fore.index_add(0, back_rows, feats[back_rows])
    return Voxels(out_coords, out, x.shape, x.batch_size), importance


def _first_of(keys: Tensor, wanted: Tensor) -> Tensor:
    """For each of the sorted unique ``wanted`` keys, a row of ``keys`` holding it."""
    sorted_keys, order = torch.sort(keys, stable=True)
    return order[torch.searchsorted(sorted_keys, wanted)]


@OPS.register(NAME, kind="sparse", dims=(3,), papers=("focal-sparse-conv",))
class FocalSparseConv3d(nn.Module):
    """Focal sparse convolution (S43): learned importance dilates only important sites, then a submanifold conv.

    ``FocalSparseConv3d(in_channels, out_channels, kernel_size=3, stride=1, *, dim=3, bias=False,
    threshold=0.5, importance_kernel=3)``: :class:`Voxels` ``(M, C_in)`` → ``(M_out, C_out)``. The importance head
    is a ``importance_kernel³`` submanifold convolution to ``kernel_size³`` logits without bias (as the paper's).
    ``forward(x, return_importance=False)``; with ``True`` also the site importance ``(M,)``.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int | Sequence[int] = 3,
        stride: int | Sequence[int] = 1,
        *,
        dim: int = 3,
        bias: bool = False,
        threshold: float = 0.5,
        importance_kernel: int = 3,
    ) -> None:
        super().__init__()
        if not isinstance(kernel_size, int) or isinstance(kernel_size, bool):
            raise ValueError(f"{NAME}: kernel_size must be one odd int (a cubic kernel), got {kernel_size!r}")
        check_odd(kernel_size, "kernel_size", NAME)
        if stride not in (1, (1, 1, 1)):
            raise ValueError(
                f"{NAME}: stride must be 1 (a submanifold convolution on the dilated sites), got {stride!r}"
            )
        if dim != 3:
            raise ValueError(f"{NAME}: works on 3-d voxel grids, so dim must be 3, got {dim!r}")
        check_int(in_channels, "in_channels", NAME)
        check_odd(importance_kernel, "importance_kernel", NAME)
        self.threshold = check_number(threshold, "threshold", NAME, low=0.0, high=1.0)
        self.kernel_size = kernel_size
        self.importance = SparseConv3d(in_channels, kernel_size**3, importance_kernel, bias=False)
        self.conv = SparseConv3d(in_channels, out_channels, kernel_size, bias=bias)

    def forward(self, x: Voxels, return_importance: bool = False) -> Voxels | tuple[Voxels, Tensor]:
        logits = self.importance(x).feats  # (M, K³)
        dilated, importance = focal_sites(x, logits, self.kernel_size, self.threshold)
        out = self.conv(dilated)
        return (out, importance) if return_importance else out

    def extra_repr(self) -> str:
        return f"threshold={self.threshold}"
