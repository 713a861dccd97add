"""``sparsify``: magnitude-prune every 1×1 convolution and run it on the sparse pointwise kernel (S107, Fast Sparse
ConvNets, inference).

Each ``nn.Conv2d`` with a 1×1 kernel, one group, no padding and float weights has its weight pruned to
``sparsity`` by magnitude (:func:`convzoo.train.sparsity.magnitude_mask`, per layer) and is replaced by
:class:`SparsePointwiseConv2d`, which holds the weight in CSR form and calls
:func:`convzoo.kernels.sparse_pointwise.pointwise` (native when built, ``torch.sparse`` otherwise). The result
equals the pruned dense model to float rounding; its 1×1 outputs are channels-last.

The paper prunes during training (gradual magnitude pruning) and keeps the first layer dense; this transform
prunes a trained model at once and leaves every non-1×1 conv dense — train with
:func:`convzoo.train.sparsity.sparsify_model` first to recover accuracy at high sparsity.
"""

from __future__ import annotations

import copy

import torch
from torch import Tensor, nn

from convzoo.core.validate import check_number
from convzoo.kernels import sparse_pointwise
from convzoo.kernels.sparse_pointwise import CSRWeight
from convzoo.registry import TRANSFORMS
from convzoo.train.sparsity import magnitude_mask

__all__ = ["SparsePointwiseConv2d", "sparsify", "is_pointwise"]


class SparsePointwiseConv2d(nn.Module):
    """A 1×1 convolution with a CSR weight: ``(N, C_in, H, W)`` float32 → ``(N, C_out, ⌈H/s⌉, ⌈W/s⌉)`` channels-last.

    Build with :meth:`from_conv`. The CSR arrays and the bias are buffers (they move and save with the module).
    ``use_native``: run the native kernel (default: when it is built); ``path`` says which runs.
    """

    def __init__(self, weight: CSRWeight, bias: Tensor | None, stride: tuple[int, int]) -> None:
        super().__init__()
        self.in_channels, self.out_channels = weight.in_channels, weight.out_channels
        self.stride = stride
        self.register_buffer("row_ptr", weight.row_ptr)
        self.register_buffer("cols", weight.cols)
        self.register_buffer("values", weight.values)
        self.register_buffer("bias", None if bias is None else bias.detach().float().clone())
        self.use_native = sparse_pointwise.available()

    @classmethod
    def from_conv(cls, conv: nn.Conv2d) -> SparsePointwiseConv2d:
        if not is_pointwise(conv):
            raise ValueError(f"SparsePointwiseConv2d: expected a 1×1, one-group, unpadded Conv2d, got {conv}")
        return cls(CSRWeight.from_dense(conv.weight), conv.bias, tuple(conv.stride))

    @property
    def path(self) -> str:
        return f"native {sparse_pointwise.isa()}" if self.use_native else "torch.sparse"

    def csr(self) -> CSRWeight:
        return CSRWeight(self.row_ptr, self.cols, self.values, self.in_channels)

    def forward(self, x: Tensor) -> Tensor:
        if self.stride != (1, 1):
            x = x[:, :, :: self.stride[0], :: self.stride[1]]  # a strided 1×1 conv reads every s-th pixel
        return sparse_pointwise.pointwise(x, self.csr(), self.bias, native=self.use_native)

    def extra_repr(self) -> str:
        density = self.values.numel() / max(1, self.in_channels * self.out_channels)
        return f"{self.in_channels}, {self.out_channels}, density={density:.3f}, stride={self.stride}, path={self.path}"


def is_pointwise(module: nn.Module) -> bool:
    """A float ``nn.Conv2d`` with a 1×1 kernel, one group and no padding."""
    return (
        type(module) is nn.Conv2d
        and module.kernel_size == (1, 1)
        and module.groups == 1
        and module.padding in ((0, 0), "valid")
        and module.weight.is_floating_point()
    )


@TRANSFORMS.register(
    "sparsify",
    kind="transform",
    papers=("fast-sparse",),
    summary="magnitude-prune every 1×1 conv and run it on the sparse (CSR) pointwise kernel (S107)",
)
def sparsify(model: nn.Module, sparsity: float = 0.9, *, inplace: bool = False) -> nn.Module:
    """``model`` (a copy unless ``inplace``) in eval mode with every 1×1 conv pruned to ``sparsity`` (the fraction
    of zero weights, per layer) and swapped for :class:`SparsePointwiseConv2d`.

    Raises ``ValueError`` when the model holds no 1×1 convolution.
    """
    check_number(sparsity, "sparsity", "sparsify", low=0.0, low_open=False, high=1.0, high_open=True)
    model = model if inplace else copy.deepcopy(model)
    if is_pointwise(model):
        return _sparse(model, sparsity)
    replaced = 0
    for parent in list(model.modules()):
        for name, child in list(parent.named_children()):
            if is_pointwise(child):
                setattr(parent, name, _sparse(child, sparsity))
                replaced += 1
    if not replaced:
        raise ValueError(f"sparsify: {type(model).__name__} holds no 1×1 convolution to sparsify")
    return model.eval()


def _sparse(conv: nn.Conv2d, sparsity: float) -> SparsePointwiseConv2d:
    with torch.no_grad():
        conv.weight.mul_(magnitude_mask(conv.weight, sparsity))
    return SparsePointwiseConv2d.from_conv(conv).eval()
