"""CondConv (S16): a per-example kernel mixed from E expert kernels by sigmoid routing, run as one grouped conv."""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from convzoo.core.conv import conv_nd, same_padding
from convzoo.core.init import conv_weight
from convzoo.core.validate import check_groups, check_int
from convzoo.ops._layout import concat, is_channels_last
from convzoo.ops.base import Op
from convzoo.registry import OPS

__all__ = ["CondConv", "condconv", "routing_weights"]


def routing_weights(x: Tensor, routing_weight: Tensor, routing_bias: Tensor) -> Tensor:
    """``r(x) = sigmoid(mean_S(x) · Rᵀ + b)``: ``x`` (N, C_in, *S), ``R`` (E, C_in), ``b`` (E,) → (N, E).

    The routing function of the paper (Eq. 2): global average pooling, a fully connected layer, a sigmoid.
    """
    pooled = x.mean(dim=tuple(range(2, x.dim())))  # (N, C_in)
    return torch.sigmoid(pooled @ routing_weight.t() + routing_bias)  # (N, E)


def condconv(
    x: Tensor,
    routing: Tensor,
    experts: Tensor,
    expert_bias: Tensor | None,
    stride: tuple[int, ...],
    padding: tuple[int, ...],
    groups: int = 1,
) -> Tensor:
    """Convolve each example with its own kernel ``Σ_e routing[n, e] · experts[e]``.

    ``x`` is ``(N, C_in, *S)``, ``routing`` ``(N, E)``, ``experts`` ``(E, C_out, C_in / groups, *k)``,
    ``expert_bias`` ``(E, C_out)`` or ``None``. Returns ``(N, C_out, *S')`` in ``x``'s memory format.
    A contiguous batch is folded into the channels, so example ``n`` is group block ``n`` of one conv with
    ``N · groups`` groups. A channels-last batch cannot be folded without transposing it (its channels are
    innermost, so ``(N, C)`` are not adjacent in memory): each example runs its own conv on its slice of ``x``
    and the outputs are written into one channels-last tensor (one copy of the output).
    """
    n, c_in, *size = x.shape
    num_experts, c_out, *kernel_shape = experts.shape
    kernels = routing @ experts.reshape(num_experts, -1)  # (N, C_out · C_in / g · Πk)
    kernels = kernels.reshape(n * c_out, *kernel_shape)  # (N · C_out, C_in / g, *k)
    bias = None if expert_bias is None else (routing @ expert_bias).reshape(n * c_out)  # (N · C_out,)
    if n > 1 and is_channels_last(x):
        outputs = [
            conv_nd(
                x[i : i + 1],  # (1, C_in, *S), channels-last
                kernels[i * c_out : (i + 1) * c_out],  # (C_out, C_in / g, *k)
                None if bias is None else bias[i * c_out : (i + 1) * c_out],
                stride=stride,
                padding=padding,
                groups=groups,
            )  # (1, C_out, *S')
            for i in range(n)
        ]
        return concat(outputs, 0, x)  # (N, C_out, *S')
    folded = x.reshape(1, n * c_in, *size)  # (1, N · C_in, *S), a view
    out = conv_nd(folded, kernels, bias, stride=stride, padding=padding, groups=n * groups)  # (1, N · C_out, *S')
    return out.reshape(n, c_out, *out.shape[2:])  # (N, C_out, *S')


@OPS.register("condconv", kind="grid", dims=(1, 2, 3), papers=("condconv",), dynamic=True)
class CondConv(Op):
    """CondConv (S16, Conditionally Parameterized Convolutions for Efficient Inference): per-example expert mixture.

    ``(N, C_in, *S) → (N, C_out, *ceil(S / stride))``, N-d:
    ``y_n = (Σ_e r_e(x_n) · W_e) * x_n`` with ``r(x) = sigmoid(GlobalAveragePool(x) · R)`` (the paper's Eq. 1–2),
    computed as one grouped convolution over the whole batch (:func:`condconv`). Each expert also has a bias,
    mixed by the same routing weights, as in the official ``CondConv2D`` layer (tensorflow/tpu).

    Default ``num_experts=8``: CondConv-EfficientNet-B0 with 8 experts is the abstract's 78.3% / 413M-MAdds
    model (official condconv README). The experts are initialised like independent convs, the routing layer
    like a linear layer (PyTorch's defaults; the TF code uses its own initialisers).
    """

    def __init__(
        self, in_channels, out_channels, kernel_size=3, stride=1, *, dim=2, bias=True, num_experts=8, groups=1
    ):
        super().__init__(in_channels, out_channels, kernel_size, stride, dim=dim, bias=bias)
        name = type(self).registry_name
        check_int(num_experts, "num_experts", name)
        check_groups(groups, name, in_channels=in_channels, out_channels=out_channels)
        self.num_experts = num_experts
        self.groups = groups
        experts = [conv_weight(out_channels, in_channels // groups, self.kernel_size, bias) for _ in range(num_experts)]
        self.experts = nn.Parameter(torch.stack([w.data for w, _ in experts]))  # (E, C_out, C_in / g, *k)
        self.expert_bias = nn.Parameter(torch.stack([b.data for _, b in experts])) if bias else None  # (E, C_out)
        self.routing_weight = nn.Parameter(torch.empty(num_experts, in_channels))
        self.routing_bias = nn.Parameter(torch.empty(num_experts))
        nn.init.kaiming_uniform_(self.routing_weight, a=math.sqrt(5))
        nn.init.uniform_(self.routing_bias, -1 / math.sqrt(in_channels), 1 / math.sqrt(in_channels))

    def forward(self, x: Tensor) -> Tensor:
        self.check_input(x)
        routing = routing_weights(x, self.routing_weight, self.routing_bias)  # (N, E)
        return condconv(
            x, routing, self.experts, self.expert_bias, self.stride, same_padding(self.kernel_size), self.groups
        )

    def extra_repr(self) -> str:
        extra = f", num_experts={self.num_experts}"
        if self.groups != 1:
            extra += f", groups={self.groups}"
        return super().extra_repr() + extra + f", bias={self.expert_bias is not None}"
