"""ResNeSt's Split-Attention convolution (S110): radix splits of a grouped conv, fused by a softmax over the splits."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from convzoo.core.conv import conv_nd, same_padding
from convzoo.core.init import conv_weight
from convzoo.core.validate import check_int
from convzoo.ops.base import Op
from convzoo.registry import OPS

__all__ = ["SplitAttentionConv", "radix_softmax"]

_BATCH_NORM = {1: nn.BatchNorm1d, 2: nn.BatchNorm2d, 3: nn.BatchNorm3d}


def radix_softmax(logits: Tensor, radix: int, cardinality: int) -> Tensor:
    """Attention weights of the radix splits from fc2's ``logits`` (N, C·R): the paper's r-Softmax (Eq. 2).

    fc2 is grouped by cardinal group, so its output channel ``g·(R·C/G) + r·(C/G) + c`` is the logit
    of split ``r`` for channel ``g·(C/G) + c``. Returns ``(N, R, C)``: a softmax over ``r`` for each
    channel when ``R > 1`` (weights sum to 1 over the splits), a sigmoid when ``R == 1``.
    """
    n = logits.shape[0]
    per_group = logits.reshape(n, cardinality, radix, -1)  # (N, G, R, C/G)
    weights = per_group.softmax(dim=2) if radix > 1 else per_group.sigmoid()
    return weights.transpose(1, 2).reshape(n, radix, -1)  # (N, R, C)


@OPS.register("split_attention", kind="grid", dims=(1, 2, 3), papers=("resnest",), dynamic=True)
class SplitAttentionConv(Op):
    """Split-Attention conv (S110, ResNeSt: Split-Attention Networks): R radix splits weighted by an r-Softmax.

    ``(N, C_in, *S) → (N, C_out, *ceil(S / stride))``, N-d, following the official ``SplAtConv2d``:

    1. ``U = ReLU(BN(conv(x)))``: a k×k conv ``C_in → C_out·R`` with ``groups = G·R`` (G = cardinality),
       "same" padding and the stride; split ``r`` is channels ``[r·C_out, (r+1)·C_out)`` of ``U``.
    2. ``s = mean_S(Σ_r U_r)`` (N, C_out); ``a = fc2(ReLU(BN(fc1(s))))`` with 1×1 convs grouped by G:
       ``fc1: C_out → I``, ``fc2: I → C_out·R``, both with bias, where
       ``I = max(C_in·R // reduction_factor, min_inter_channels)`` (official: reduction 4, minimum 32).
    3. ``out = Σ_r radix_softmax(a)[:, r] · U_r``: softmax over the R splits within each cardinal group
       (sigmoid gate when R = 1).

    Defaults are ResNeSt-50's (radix 2, cardinality 1, reduction factor 4, minimum width 32). ``bias``
    is the k×k conv's bias; ResNeSt builds it with ``bias=False`` (a BN follows). In ResNeSt-50 the
    block downsamples with an average pool after this conv (``avd``) and runs it at stride 1; here the
    stride goes to the conv, as the official module's own ``stride`` argument does. The pooled
    attention vector is batch-normalised, so training mode needs a batch of at least 2.
    """

    def __init__(
        self,
        in_channels,
        out_channels,
        kernel_size=3,
        stride=1,
        *,
        dim=2,
        bias=True,
        radix=2,
        cardinality=1,
        reduction_factor=4,
        min_inter_channels=32,
    ):
        super().__init__(in_channels, out_channels, kernel_size, stride, dim=dim, bias=bias)
        name = type(self).registry_name
        self.radix = check_int(radix, "radix", name)
        self.cardinality = check_int(cardinality, "cardinality", name)
        self.reduction_factor = check_int(reduction_factor, "reduction_factor", name)
        check_int(min_inter_channels, "min_inter_channels", name)
        conv_groups = cardinality * radix
        if in_channels % conv_groups:
            raise ValueError(
                f"{name}: in_channels ({in_channels}) must be divisible by cardinality·radix "
                f"({cardinality}·{radix} = {conv_groups}), the groups of its conv"
            )
        if out_channels % cardinality:
            raise ValueError(f"{name}: out_channels ({out_channels}) must be divisible by cardinality ({cardinality})")
        self.inter_channels = max(in_channels * radix // reduction_factor, min_inter_channels)
        if self.inter_channels % cardinality:
            raise ValueError(
                f"{name}: the attention width max(in_channels·radix // reduction_factor, min_inter_channels) = "
                f"{self.inter_channels} must be divisible by cardinality ({cardinality})"
            )
        split_channels = out_channels * radix
        inter, pointwise = self.inter_channels, (1,) * dim
        self.weight, self.bias = conv_weight(split_channels, in_channels // conv_groups, self.kernel_size, bias)
        self.bn0 = _BATCH_NORM[dim](split_channels)
        self.fc1_weight, self.fc1_bias = conv_weight(inter, out_channels // cardinality, pointwise, True)
        self.bn1 = _BATCH_NORM[dim](inter)
        self.fc2_weight, self.fc2_bias = conv_weight(split_channels, inter // cardinality, pointwise, True)

    def forward(self, x: Tensor) -> Tensor:
        self.check_input(x)
        if self.training and x.shape[0] < 2:
            raise ValueError(
                f"{type(self).registry_name}: training mode batch-normalises the pooled attention vector and needs "
                f"a batch of at least 2, got input shape {tuple(x.shape)}; call .eval() for single samples"
            )
        n = x.shape[0]
        spatial = tuple(range(2, x.dim()))
        features = conv_nd(
            x,
            self.weight,
            self.bias,
            stride=self.stride,
            padding=same_padding(self.kernel_size),
            groups=self.cardinality * self.radix,
        )  # (N, C_out·R, *S')
        splits = torch.relu(self.bn0(features)).unflatten(1, (self.radix, self.out_channels))  # (N, R, C_out, *S')
        pooled = splits.sum(dim=1).mean(dim=spatial, keepdim=True)  # (N, C_out, 1, ..., 1)
        hidden = conv_nd(pooled, self.fc1_weight, self.fc1_bias, groups=self.cardinality)  # (N, I, 1, ..., 1)
        hidden = torch.relu(self.bn1(hidden))
        logits = conv_nd(hidden, self.fc2_weight, self.fc2_bias, groups=self.cardinality)  # (N, C_out·R, 1, ..., 1)
        weights = radix_softmax(logits.flatten(1), self.radix, self.cardinality)  # (N, R, C_out)
        weights = weights.view(n, self.radix, self.out_channels, *(1,) * self.dim)  # (N, R, C_out, 1, ..., 1)
        # Σ_r as element-wise multiply-adds, which write in the features' memory format (a sum over dim 1 would
        # write a contiguous tensor)
        out = weights[:, 0] * splits[:, 0]  # (N, C_out, *S')
        for r in range(1, self.radix):
            out = torch.addcmul(out, weights[:, r], splits[:, r])
        return out

    def extra_repr(self) -> str:
        return super().extra_repr() + (
            f", radix={self.radix}, cardinality={self.cardinality}, inter_channels={self.inter_channels}, "
            f"bias={self.bias is not None}"
        )
