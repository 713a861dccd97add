"""The native packed XNOR kernels (``convzoo._binary_native``, C++), when the package build compiled them.

The extension is built by ``pip install --no-build-isolation`` (``setup.py``; torch's C++ extension tooling)
and is optional: :func:`available` says whether it loaded and :func:`unavailable_reason` why not. It computes
exactly the integers of :func:`convzoo.kernels.binary_packed.packed_conv` (same bit layout, same padding
convention), with AVX-512 VPOPCNTDQ where the CPU has it and scalar popcount elsewhere (:func:`isa`), on
torch's intra-op threads (``torch.set_num_threads``).

These wrappers take and return the layouts of the pure-PyTorch path: 1-, 2- or 3-d inputs, words
``(N, *S, W)``, results ``(N, C_out, *out)`` (a view of channels-last memory).
"""

from __future__ import annotations

from collections.abc import Sequence

from torch import Tensor

from convzoo.kernels._native import NativeExtension

__all__ = ["available", "unavailable_reason", "isa", "isas", "set_isa", "pack", "window_mean", "prepare", "conv"]

_EXTENSION = NativeExtension("convzoo._binary_native", "binary native")
available = _EXTENSION.available
unavailable_reason = _EXTENSION.unavailable_reason
isa = _EXTENSION.isa
set_isa = _EXTENSION.set_isa
_require = _EXTENSION.require


def isas() -> list[str]:
    """The instruction sets this CPU supports, fastest first."""
    return list(_require().isas())


def pack(x: Tensor, scale: Tensor | None = None, shift: Tensor | None = None) -> tuple[Tensor, Tensor]:
    """Signs of ``y = x · scale + shift`` (per channel, optional: a folded BatchNorm) for ``x (N, C, *S)`` float32,
    packed along C, and ``mean_c |y|``: ``(N, *S, W)`` int64 and ``(N, 1, *S)``.

    Reads contiguous (channels-first) and channels-last memory in place; other layouts are copied first.
    """
    batch, channels, spatial = x.shape[0], x.shape[1], x.shape[2:]
    if x.is_contiguous():
        words, mean_abs = _require().pack_planes(x.view(batch, channels, -1), scale, shift)
    else:
        rows = x.movedim(1, -1).reshape(-1, channels)  # no copy for channels-last
        words, mean_abs = _require().pack(rows, scale, shift)
    return words.view(batch, *spatial, -1), mean_abs.view(batch, 1, *spatial)


def prepare(w_words: Tensor) -> tuple[Tensor, Tensor]:
    """``w_words (C_out, *k, W)`` re-laid out for :func:`conv` (``prepared=``): the words by tap and word with the
    output channels innermost, and their popcounts per tap."""
    wt, pop = _require().prepare(_as_3d(w_words.contiguous(), 1))
    return wt, pop


def window_mean(mean_abs: Tensor, kernel_size: Sequence[int], stride: Sequence[int]) -> Tensor:
    """The K map as :func:`convzoo.ops.binary.window_mean`: ``A (N, 1, *S)`` float32 → ``(N, 1, *out)``."""
    spatial = mean_abs.dim() - 2
    pad = [1] * (3 - spatial)
    planes = mean_abs.reshape(mean_abs.shape[0], *pad, *mean_abs.shape[2:])  # (N, D, H, W)
    out = _require().window_mean(planes, pad + list(kernel_size), pad + list(stride))
    out_size = tuple(-(-s // st) for s, st in zip(mean_abs.shape[2:], stride, strict=True))
    return out.view(mean_abs.shape[0], 1, *out_size)


def _as_3d(words: Tensor, batch_dims: int) -> Tensor:
    """``(B, *S, W)`` with 1 ≤ len(S) ≤ 3 → ``(B, 1…, *S, W)`` with three spatial dims."""
    spatial = words.dim() - batch_dims - 1
    shape = words.shape
    return words.view(*shape[:batch_dims], *([1] * (3 - spatial)), *shape[batch_dims:])


def conv(
    x_words: Tensor,
    w_words: Tensor,
    in_channels: int,
    stride: Sequence[int],
    *,
    alpha: Tensor | None = None,
    scale: Tensor | None = None,
    bias: Tensor | None = None,
    prepared: tuple[Tensor, Tensor] | None = None,
) -> Tensor:
    """Binary convolution of packed words, as :func:`convzoo.kernels.binary_packed.packed_conv`.

    Without ``alpha``: the integer dot products ``(N, C_out, *out)`` int64. With ``alpha (C_out,)``: float32
    ``dot · α · scale + bias``, ``scale (N, 1, *out)`` the K map (optional), in one pass. ``prepared``: what
    :func:`prepare` returned for ``w_words`` (otherwise the weights are re-laid out on every call).
    """
    spatial = x_words.dim() - 2
    if not 1 <= spatial <= 3 or w_words.dim() != spatial + 2 or len(stride) != spatial:
        raise ValueError(
            f"binary native: expected x_words (N, *S, W), w_words (C_out, *k, W) and stride with 1-3 spatial dims, "
            f"got {tuple(x_words.shape)}, {tuple(w_words.shape)} and {tuple(stride)}"
        )
    stride3 = [1] * (3 - spatial) + [int(s) for s in stride]
    scale3 = None if scale is None else scale.reshape(-1)
    w3 = _as_3d(w_words.contiguous(), 1)
    out = _require().conv(
        _as_3d(x_words.contiguous(), 1), w3, in_channels, stride3, alpha, scale3, bias, prepared
    )  # (N, od, oh, ow, C_out)
    out_size = tuple(-(-s // st) for s, st in zip(x_words.shape[1:-1], stride, strict=True))
    return out.view(x_words.shape[0], *out_size, -1).movedim(-1, 1)
