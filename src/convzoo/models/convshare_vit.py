"""ConvShareViT (S77, Ibadulla, Chen & Reyes-Aldasoro, "ConvShareViT: Enhancing Vision Transformers with
Convolutional Attention Mechanisms for Free-Space Optical Accelerators").

ConvShareViT replaces every linear layer of the Transformer blocks — the query/key/value and output projections
of multi-head self-attention and both layers of the MLP — with a depth-wise convolution whose kernels are shared
across its input channels, so that a 4f optical system (which convolves many input planes with one kernel at
once) can run it. Here the input channels are the tokens: every token's embedding is convolved with the same
bank of kernels. With ``"valid"`` padding and kernels as wide as the embedding, each kernel yields one output
feature and the layer is a linear layer (the configuration the paper finds to learn attention); narrower valid
kernels tie the linear layer's weights into a banded Toeplitz structure; ``"same"`` padding gives a sliding
convolution along the embedding (the configurations the paper finds to behave like CNNs).

Configuration followed: no configuration table or code of the paper could be consulted, so the registered
model is DeiT-Ti (dim 192, depth 12, 3 heads, MLP ratio 4, patch 16, 224² input, stochastic depth 0.1) with
valid, full-width shared convolutions — the same parameter count as DeiT-Ti (5,717,416). The paper's own
experiments train smaller ViTs on CIFAR-100. The convolutions run along the flattened embedding (1-D); the
optical system convolves the same values laid out as 2-D tiles. The attention products ``QKᵀ`` and ``AV``
stay matrix products.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from convzoo.core.init import drop_path_rates
from convzoo.core.validate import check_choice, check_int, check_odd
from convzoo.layers.attention import MultiHeadAttention, TransformerBlock
from convzoo.layers.mlp import Mlp
from convzoo.models.dwvit import TokenViT
from convzoo.models.registration import register_variant

__all__ = ["ConvShareViTConfig", "ConvShareViT", "SharedDepthwiseConv"]


@dataclass(frozen=True)
class ConvShareViTConfig:
    """One ConvShareViT: DeiT's ``img_size``, ``patch_size``, ``dim``, ``depth``, ``heads``, ``mlp_ratio``,
    ``drop_path_rate``; ``padding`` ("valid" or "same") and ``kernel_size`` (``None``: as wide as each layer's
    input for "valid"; an odd width for "same") of every shared convolution."""

    img_size: int = 224
    patch_size: int = 16
    dim: int = 192
    depth: int = 12
    heads: int = 3
    mlp_ratio: float = 4.0
    padding: str = "valid"
    kernel_size: int | None = None
    drop_path_rate: float = 0.1


class SharedDepthwiseConv(nn.Module):
    """Depth-wise convolution with kernels shared across input channels (S77): tokens ``(N, L, C_in)`` →
    ``(N, L, C_out)``.

    Each of the L tokens is one input channel; all are convolved (cross-correlation, 1-D along the embedding)
    with the same ``m`` kernels of width ``k`` (bias one per kernel). ``"valid"``: each kernel gives
    ``C_in − k + 1`` outputs, so ``C_out = m·(C_in − k + 1)`` (``k = C_in`` default: ``m = C_out`` kernels, a
    linear layer). ``"same"``: ``k`` odd, zero padding ``k // 2``; ``C_out = m·C_in`` with ``m`` kernels, or for
    ``C_out < C_in`` one kernel at stride ``C_in / C_out``. Outputs are ordered kernel by kernel.
    :meth:`equivalent_linear` returns the ``(C_out, C_in)`` weight and ``(C_out,)`` bias of the same map.
    """

    def __init__(
        self, in_features: int, out_features: int, *, padding: str = "valid", kernel_size: int | None = None
    ) -> None:
        super().__init__()
        owner = "convshare_vit"
        check_int(in_features, "in_features", owner)
        check_int(out_features, "out_features", owner)
        self.padding = check_choice(padding, ("valid", "same"), "padding", owner)
        self.in_features, self.out_features = in_features, out_features
        self.stride = 1
        if padding == "valid":
            k = in_features if kernel_size is None else check_int(kernel_size, "kernel_size", owner, high=in_features)
            length = in_features - k + 1
            if out_features % length:
                raise ValueError(
                    f"{owner}: a valid kernel of width {k} gives {length} outputs per kernel, which must divide "
                    f"out_features {out_features}"
                )
            kernels, self.pad = out_features // length, 0
        else:
            if kernel_size is None:
                raise ValueError(f"{owner}: same padding needs an odd kernel_size, got None")
            k = check_odd(kernel_size, "kernel_size", owner)
            if out_features % in_features == 0:
                kernels = out_features // in_features
            elif in_features % out_features == 0:
                kernels, self.stride = 1, in_features // out_features
            else:
                raise ValueError(
                    f"{owner}: same padding needs out_features {out_features} to be a multiple or a divisor of "
                    f"in_features {in_features}"
                )
            self.pad = k // 2
        self.kernel_size = k
        self.weight = nn.Parameter(torch.empty(kernels, 1, k))
        self.bias = nn.Parameter(torch.zeros(kernels))
        nn.init.trunc_normal_(self.weight, std=0.02)

    def forward(self, x: Tensor) -> Tensor:
        if x.shape[-1] != self.in_features:
            raise ValueError(f"convshare_vit: expected {self.in_features} input features, got {x.shape[-1]}")
        lead = x.shape[:-1]
        y = F.conv1d(x.reshape(-1, 1, self.in_features), self.weight, self.bias, self.stride, self.pad)  # (·, m, len)
        return y.reshape(*lead, self.out_features)  # (N, L, m·len)

    def equivalent_linear(self) -> tuple[Tensor, Tensor]:
        """The banded (Toeplitz) ``(C_out, C_in)`` weight and the ``(C_out,)`` bias of this layer."""
        eye = torch.eye(self.in_features, dtype=self.weight.dtype, device=self.weight.device)
        zero_bias = torch.zeros_like(self.bias)
        columns = F.conv1d(eye.unsqueeze(1), self.weight, zero_bias, self.stride, self.pad)  # (C_in, m, len)
        length = columns.shape[-1]
        return columns.reshape(self.in_features, -1).T, self.bias.repeat_interleave(length)

    def extra_repr(self) -> str:
        return (
            f"{self.in_features}, {self.out_features}, kernels={self.weight.shape[0]}, "
            f"kernel_size={self.kernel_size}, padding={self.padding!r}, stride={self.stride}"
        )


def _block(cfg: ConvShareViTConfig, drop_path: float) -> TransformerBlock:
    """A DeiT block whose four linear layers are :class:`SharedDepthwiseConv`."""
    dim, hidden = cfg.dim, int(cfg.dim * cfg.mlp_ratio)

    def conv(c_in: int, c_out: int) -> SharedDepthwiseConv:
        return SharedDepthwiseConv(c_in, c_out, padding=cfg.padding, kernel_size=cfg.kernel_size)

    attn = MultiHeadAttention(dim, cfg.heads)
    attn.qkv, attn.proj = conv(dim, 3 * dim), conv(dim, dim)
    mlp = Mlp(dim, hidden)
    mlp[0], mlp[2] = conv(dim, hidden), conv(hidden, dim)
    return TransformerBlock(dim, drop_path=drop_path, attn=attn, mlp=mlp)


class ConvShareViT(TokenViT):
    """ConvShareViT (S77, "ConvShareViT: Enhancing Vision Transformers with Convolutional Attention Mechanisms for
    Free-Space Optical Accelerators"): a DeiT whose blocks use :class:`SharedDepthwiseConv` for every linear layer.

    Input ``(N, 3, H, W)`` → logits; features as :class:`~convzoo.models.dwvit.TokenViT`. ``takes_op=False``: its
    only spatial convolution is the non-overlapping patch embedding.
    """

    def __init__(self, cfg: ConvShareViTConfig, *, num_classes: int = 1000, in_chans: int = 3, op: str | None = None):
        if op is not None:
            raise ValueError("takes no op= (its only spatial conv is the patch embedding)")
        check_int(cfg.depth, "depth", "convshare_vit")
        if cfg.dim % cfg.heads:
            raise ValueError(f"convshare_vit: heads must divide dim {cfg.dim}, got {cfg.heads}")

        def blocks() -> list[nn.Module]:
            return [_block(cfg, rate) for rate in drop_path_rates(cfg.drop_path_rate, cfg.depth)]

        super().__init__(
            "convshare_vit",
            img_size=cfg.img_size,
            patch_size=cfg.patch_size,
            dim=cfg.dim,
            blocks=blocks,
            num_classes=num_classes,
            in_chans=in_chans,
        )


_DEIT_TI = 5_717_416
register_variant(
    "convshare_vit_tiny",
    ConvShareViT,
    ConvShareViTConfig(),
    papers=("convshare-vit",),
    params=_DEIT_TI,
    params_source=(
        f"DeiT-Ti (Touvron et al. Table 1: 5M; timm deit_tiny_patch16_224: {_DEIT_TI:,}): valid, full-width shared "
        "convolutions hold exactly the weights and biases of the linear layers they replace"
    ),
    summary="ConvShareViT-Ti (S77): DeiT-Ti with shared-weight depth-wise convs in place of every block linear",
    takes_op=False,
    test_cfg={"img_size": 32, "patch_size": 8, "dim": 48, "depth": 2},
)
