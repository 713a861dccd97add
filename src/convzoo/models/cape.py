"""CaPE (S75, EscherNet): camera positional encoding, which makes multi-view attention depend only on the
relative pose of the two views.

Each token carries the 4 × 4 pose ``P`` of the view it comes from. Its query and key are cut into ``D/4``
blocks of 4 and each block is multiplied by a pose matrix (6-DoF CaPE)::

    q' = q · φ(P),   k' = k · φ(P^{−T}),   φ(M) = diag(M, …, M)  (D/4 copies)

so ``q'_i · k'_j = q_i · φ(P_i P_j^{−1}) · k_j``: the attention score sees the views only through ``P_i P_j^{−1}``,
unchanged when every pose is right-multiplied by the same transform (a change of world frame). Values are not
encoded. Shapes: queries/keys ``(..., N, D)`` with ``D`` divisible by 4, poses ``(..., N, 4, 4)``.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

__all__ = ["CaPE", "cape_key", "cape_query"]


def _blocks(x: Tensor, matrices: Tensor) -> Tensor:
    """``x`` ``(..., N, D)`` with each 4-block multiplied (as a row vector) by ``matrices`` ``(..., N, 4, 4)``."""
    if x.shape[-1] % 4:
        raise ValueError(f"CaPE: the feature width must be divisible by 4, got {x.shape[-1]}")
    if matrices.shape[-2:] != (4, 4) or matrices.shape[:-2] != x.shape[:-1]:
        raise ValueError(
            f"CaPE: poses must be (..., N, 4, 4) matching features {tuple(x.shape)}, got {tuple(matrices.shape)}"
        )
    blocks = x.unflatten(-1, (-1, 4))  # (..., N, D/4, 4)
    return torch.einsum("...bi,...ij->...bj", blocks, matrices).flatten(-2)  # (..., N, D)


def cape_query(q: Tensor, poses: Tensor) -> Tensor:
    """``q · φ(P)``."""
    return _blocks(q, poses.to(q.dtype))


def cape_key(k: Tensor, poses: Tensor) -> Tensor:
    """``k · φ(P^{−T})``."""
    return _blocks(k, torch.linalg.inv(poses.to(k.dtype)).transpose(-1, -2))


class CaPE(nn.Module):
    """Multi-head attention whose queries and keys carry the camera pose (CaPE); ``(B, N, D)`` tokens and
    ``(B, N, 4, 4)`` poses → ``(B, N, D)``. ``scores`` returns the ``(B, heads, N, N)`` pre-softmax scores."""

    def __init__(self, dim: int, heads: int = 4) -> None:
        super().__init__()
        if dim % heads or (dim // heads) % 4:
            raise ValueError(f"CaPE: dim/heads must be an integer divisible by 4, got dim={dim}, heads={heads}")
        self.heads = heads
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)

    def _qkv(self, x: Tensor, poses: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        q, k, v = self.qkv(x).unflatten(-1, (3, self.heads, -1)).permute(2, 0, 3, 1, 4)  # (B, h, N, d) each
        per_head = poses.unsqueeze(1).expand(-1, self.heads, -1, -1, -1)  # (B, h, N, 4, 4)
        return cape_query(q, per_head), cape_key(k, per_head), v

    def scores(self, x: Tensor, poses: Tensor) -> Tensor:
        q, k, _ = self._qkv(x, poses)
        return q @ k.transpose(-1, -2) / math.sqrt(q.shape[-1])

    def forward(self, x: Tensor, poses: Tensor) -> Tensor:
        q, k, v = self._qkv(x, poses)
        attention = torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(q.shape[-1]), dim=-1)
        return self.proj((attention @ v).transpose(1, 2).flatten(2))  # (B, N, D)
