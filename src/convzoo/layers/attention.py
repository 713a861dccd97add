"""Multi-head self-attention (Vaswani et al., "Attention Is All You Need"; ViT) and the pre-norm Transformer block.

The attention the hybrid models of catalog section B share (ConTNet S4, EViT S71, GLMix S88, CST S70, ...):

- :class:`MultiHeadAttention` on tokens ``(N, L, C) → (N, L, C)``; ``context=`` attends ``x``'s queries to another
  token set (cross-attention), ``need_weights=True`` also returns the ``(N, heads, L, L')`` softmax weights;
- :class:`TransformerBlock`: ``x + DropPath(γ₁ ⊙ attn(norm1(x)))``, then ``x + DropPath(γ₂ ⊙ mlp(norm2(x)))``,
  with the MLP of :mod:`convzoo.layers.mlp` and optional LayerScale γ; any token mixer or MLP can stand in.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from convzoo.core.validate import check_int, check_number
from convzoo.layers.drop_path import DropPath
from convzoo.layers.layer_scale import optional_layer_scale
from convzoo.layers.mlp import Mlp
from convzoo.registry import LAYERS

__all__ = ["attention_weights", "MultiHeadAttention", "TransformerBlock"]


def attention_weights(q: Tensor, k: Tensor, scale: float | None = None) -> Tensor:
    """``softmax(q kᵀ · scale)`` over the keys, q ``(..., L, d)``, k ``(..., L', d)`` → ``(..., L, L')``.

    ``scale`` defaults to ``1 / √d``.
    """
    scale = q.shape[-1] ** -0.5 if scale is None else scale
    return torch.softmax((q * scale) @ k.transpose(-2, -1), dim=-1)


@LAYERS.register(
    "multi_head_attention", kind="layer", dims=(1,), papers=("contnet", "evit", "glmix", "conv-set-transformer")
)
class MultiHeadAttention(nn.Module):
    """Multi-head scaled dot-product self-attention on tokens ``(N, L, C)`` → ``(N, L, C)`` (Vaswani et al.; ViT).

    ``num_heads`` heads of width ``head_dim`` (default ``C // num_heads``; ``C`` must then divide). One ``qkv``
    Linear ``C → 3·heads·head_dim`` (bias ``qkv_bias``), then ``proj`` Linear ``heads·head_dim → C`` (bias
    ``proj_bias``). ``scale`` defaults to ``head_dim^-½``. ``forward(x, context=None, need_weights=False)``:
    with ``context`` ``(N, L', C)`` the queries come from ``x`` and the keys/values from ``context`` (the same
    ``qkv`` weights, so the parameter count does not change); ``need_weights=True`` returns ``(y, weights)``,
    the weights ``(N, heads, L, L')`` after softmax (computed explicitly; otherwise the fused
    ``scaled_dot_product_attention`` runs).
    """

    def __init__(
        self,
        dim: int,
        num_heads: int = 8,
        *,
        head_dim: int | None = None,
        qkv_bias: bool = True,
        proj_bias: bool = True,
        scale: float | None = None,
        attn_drop: float = 0.0,
        proj_drop: float = 0.0,
    ) -> None:
        super().__init__()
        check_int(dim, "dim", "multi_head_attention")
        check_int(num_heads, "num_heads", "multi_head_attention")
        if head_dim is None:
            if dim % num_heads:
                raise ValueError(f"multi_head_attention: num_heads must divide dim {dim}, got {num_heads}")
            head_dim = dim // num_heads
        check_int(head_dim, "head_dim", "multi_head_attention")
        check_number(attn_drop, "attn_drop", "multi_head_attention", low=0.0, low_open=False, high=1.0, high_open=True)
        self.dim, self.num_heads, self.head_dim = dim, num_heads, head_dim
        self.scale = head_dim**-0.5 if scale is None else float(scale)
        width = num_heads * head_dim
        self.qkv = nn.Linear(dim, 3 * width, bias=qkv_bias)
        self.attn_drop = attn_drop
        self.proj = nn.Linear(width, dim, bias=proj_bias)
        self.proj_drop = nn.Dropout(proj_drop)

    def _heads(self, t: Tensor) -> Tensor:
        n, length, _ = t.shape
        return t.reshape(n, length, self.num_heads, self.head_dim).transpose(1, 2)  # (N, heads, L, d)

    def forward(
        self, x: Tensor, context: Tensor | None = None, need_weights: bool = False
    ) -> Tensor | tuple[Tensor, Tensor]:
        if x.dim() != 3 or x.shape[-1] != self.dim:
            raise ValueError(f"multi_head_attention: expected (N, L, {self.dim}) tokens, got {tuple(x.shape)}")
        n, length, _ = x.shape
        width = self.num_heads * self.head_dim
        if context is None:
            q, k, v = self.qkv(x).split(width, dim=-1)  # each (N, L, heads·d)
        else:
            w, b = self.qkv.weight, self.qkv.bias
            q = F.linear(x, w[:width], None if b is None else b[:width])  # (N, L, heads·d)
            k, v = F.linear(context, w[width:], None if b is None else b[width:]).split(width, dim=-1)  # (N, L', ·)
        q, k, v = self._heads(q), self._heads(k), self._heads(v)  # (N, heads, L or L', d)
        drop = self.attn_drop if self.training else 0.0
        weights = None
        if need_weights:
            weights = attention_weights(q, k, self.scale)  # (N, heads, L, L')
            y = F.dropout(weights, drop) @ v  # (N, heads, L, d)
        else:
            y = F.scaled_dot_product_attention(q, k, v, dropout_p=drop, scale=self.scale)  # (N, heads, L, d)
        y = y.transpose(1, 2).reshape(n, length, width)  # (N, L, heads·d)
        y = self.proj_drop(self.proj(y))
        return (y, weights) if need_weights else y

    def extra_repr(self) -> str:
        return f"dim={self.dim}, num_heads={self.num_heads}, head_dim={self.head_dim}"


@LAYERS.register("transformer_block", kind="layer", dims=(1,), papers=("evit", "glmix"))
class TransformerBlock(nn.Module):
    """Pre-norm Transformer encoder block on tokens ``(N, L, C)`` → ``(N, L, C)`` (ViT):

    ``x = x + DropPath(γ₁ ⊙ attn(norm1(x)))``, ``x = x + DropPath(γ₂ ⊙ mlp(norm2(x)))``.

    Defaults: ``attn`` a :class:`MultiHeadAttention` (``num_heads``, ``qkv_bias``), ``mlp`` an
    :class:`~convzoo.layers.mlp.Mlp` ``C → mlp_ratio·C → C`` with ``act``, norms ``nn.LayerNorm(C, eps=norm_eps)``.
    ``layer_scale`` > 0 adds LayerScale γ (CaiT) starting at that value; ≤ 0 leaves it out. ``attn=`` / ``mlp=``
    put another token mixer / channel MLP (any ``(N, L, C)`` module) in place of the defaults.
    """

    def __init__(
        self,
        dim: int,
        num_heads: int = 8,
        *,
        mlp_ratio: float = 4.0,
        qkv_bias: bool = True,
        act: Callable[[], nn.Module] = nn.GELU,
        norm_eps: float = 1e-6,
        layer_scale: float = 0.0,
        drop_path: float = 0.0,
        attn: nn.Module | None = None,
        mlp: nn.Module | None = None,
    ) -> None:
        super().__init__()
        check_int(dim, "dim", "transformer_block")
        check_number(mlp_ratio, "mlp_ratio", "transformer_block", low=0.0, low_open=True)
        self.norm1 = nn.LayerNorm(dim, eps=norm_eps)
        self.attn = attn if attn is not None else MultiHeadAttention(dim, num_heads, qkv_bias=qkv_bias)
        self.ls1 = optional_layer_scale(dim, layer_scale, channels_last=True)
        self.norm2 = nn.LayerNorm(dim, eps=norm_eps)
        self.mlp = mlp if mlp is not None else Mlp(dim, int(dim * mlp_ratio), act=act)
        self.ls2 = optional_layer_scale(dim, layer_scale, channels_last=True)
        self.drop_path = DropPath(drop_path)

    def forward(self, x: Tensor) -> Tensor:
        x = x + self.drop_path(self.ls1(self.attn(self.norm1(x))))
        return x + self.drop_path(self.ls2(self.mlp(self.norm2(x))))
