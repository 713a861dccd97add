"""SparK (S81, Tian et al., "Designing BERT for Convolutional Networks: Sparse and Hierarchical Masked Modeling").

Masked image modelling for any convzoo classifier, as the paper builds it:

1. **Mask**: the deepest feature map's grid ``(f, f)`` (``f = H / r``, ``r`` the backbone's total stride) is
   split into patches of ``r × r`` pixels; ``round(f² (1 - mask_ratio))`` of them stay *visible*
   (``active (B, 1, f, f)``, True = visible), the rest are masked (``mask_ratio = 0.6``).
2. **Sparse encoder** (:class:`SparseEncoder`): a copy of the backbone in which every ``Conv2d`` and pooling
   layer zeroes its output at masked positions (:class:`MaskedConv2d`, :class:`MaskedPool2d`) and every
   ``BatchNorm2d`` normalises with statistics of the visible positions only (:class:`MaskedBatchNorm2d`), the
   paper's "sparse convolution" on a dense tensor. The input's masked patches are zeroed first. So nothing of a
   masked position ever reaches a visible one (``tests/models/test_spark.py`` changes masked inputs and finds the
   visible features unchanged). The parameter names are the backbone's: the encoder's state dict loads into the
   classifier for fine-tuning (:meth:`SparK.encoder_state_dict`).
3. **Densify**: each scale's features (deepest first) pass a masked BatchNorm, masked positions are filled with
   a learned mask token of that scale, and a projection (1×1 for the deepest, 3×3 elsewhere) maps them to the
   decoder width of that scale (``decoder_width / 2^i``).
4. **Light decoder** (UNet-like): ``log2 r`` blocks of [``ConvTranspose2d(4, 2, 1)`` ×2 upsampling → 3×3 conv →
   BN → ReLU6 → 3×3 conv → BN], each scale's densified features added before the block of its resolution; a
   1×1 projection to the image channels.
5. **Loss**: mean squared error against the per-patch normalised input (each patch's pixels minus their mean,
   over their std), on masked patches only.

Shapes: ``SparK(backbone)(x (B, C, H, W), active=None)`` → scalar loss; :meth:`SparK.reconstruct` →
``(B, C, H, W)``. ``H`` and ``W`` must be multiples of ``r``.

Departures: the paper's decoder has one up-block per scale for backbones whose shallowest feature is at stride
4; a backbone with a feature map at stride 1 (CIFAR ResNets) adds it after the last block, before the final
projection. The decoder width defaults to the deepest encoder width (the paper's ConvNeXt-S choice; its
ResNet-50 uses 768 for 2048 channels).
"""

from __future__ import annotations

import copy
import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from convzoo.core.validate import check_int, check_number

__all__ = [
    "ActiveMask",
    "MaskedConv2d",
    "MaskedBatchNorm2d",
    "MaskedPool2d",
    "SparseEncoder",
    "LightDecoder",
    "SparK",
    "random_active",
    "patchify",
]


class ActiveMask:
    """The visible patches of the batch being encoded, ``active (B, 1, f, f)`` bool, shared by the masked layers
    of one encoder and set only for the duration of its forward."""

    def __init__(self) -> None:
        self.active: Tensor | None = None

    def at(self, size: tuple[int, int]) -> Tensor:
        """``(B, 1, *size)`` bool: the mask repeated to a feature map of ``size`` (a multiple of ``f``)."""
        if self.active is None:
            raise RuntimeError("spark: a masked layer ran outside SparseEncoder.forward (no mask is set)")
        f_h, f_w = self.active.shape[-2:]
        if size[0] % f_h or size[1] % f_w:
            raise ValueError(f"spark: a feature map of {tuple(size)} is not a multiple of the mask grid {(f_h, f_w)}")
        return self.active.repeat_interleave(size[0] // f_h, 2).repeat_interleave(size[1] // f_w, 3)


class MaskedConv2d(nn.Conv2d):
    """``Conv2d`` whose output is zero at masked positions."""

    mask: ActiveMask

    def forward(self, x: Tensor) -> Tensor:
        out = super().forward(x)
        return out * self.mask.at(out.shape[-2:])


class MaskedPool2d(nn.Module):
    """A pooling layer whose output is zero at masked positions."""

    def __init__(self, pool: nn.Module, mask: ActiveMask) -> None:
        super().__init__()
        self.pool, self.mask = pool, mask

    def forward(self, x: Tensor) -> Tensor:
        out = self.pool(x)
        return out * self.mask.at(out.shape[-2:])


class MaskedBatchNorm2d(nn.BatchNorm2d):
    """``BatchNorm2d`` over the visible positions only: the batch statistics (training) are those of the
    ``(visible positions, C)`` rows; masked positions come out zero."""

    mask: ActiveMask

    def forward(self, x: Tensor) -> Tensor:
        visible = self.mask.at(x.shape[-2:])[:, 0]  # (B, H, W)
        rows = x.permute(0, 2, 3, 1)[visible]  # (visible positions, C)
        if self.training and self.track_running_stats:
            self.num_batches_tracked.add_(1)
        momentum = 0.0 if self.momentum is None else self.momentum
        normed = F.batch_norm(
            rows,
            self.running_mean,
            self.running_var,
            self.weight,
            self.bias,
            self.training or not self.track_running_stats,
            momentum,
            self.eps,
        )
        out = x.new_zeros(x.shape[0], *x.shape[2:], x.shape[1])  # (B, H, W, C)
        out[visible] = normed
        return out.permute(0, 3, 1, 2)


def _masked(module: nn.Module, mask: ActiveMask) -> nn.Module:
    """``module`` with its convs, BNs and pools masked (the same parameter and buffer names)."""
    if type(module) is nn.Conv2d:
        conv = MaskedConv2d(
            module.in_channels,
            module.out_channels,
            module.kernel_size,
            module.stride,
            module.padding,
            module.dilation,
            module.groups,
            module.bias is not None,
            module.padding_mode,
        )
        conv.load_state_dict(module.state_dict())
        conv.mask = mask
        return conv
    if type(module) is nn.BatchNorm2d:
        bn = MaskedBatchNorm2d(
            module.num_features, module.eps, module.momentum, module.affine, module.track_running_stats
        )
        bn.load_state_dict(module.state_dict())
        bn.mask = mask
        return bn
    if isinstance(module, nn.MaxPool2d | nn.AvgPool2d | nn.AdaptiveAvgPool2d | nn.AdaptiveMaxPool2d):
        return MaskedPool2d(copy.deepcopy(module), mask)
    if isinstance(module, nn.LayerNorm | nn.GroupNorm | nn.LazyBatchNorm2d | nn.SyncBatchNorm):
        raise ValueError(f"spark: no masked form of {type(module).__name__} (masked-aware BatchNorm2d only)")
    for name, child in list(module.named_children()):  # module is the encoder's own deep copy: replaced in place
        setattr(module, name, _masked(child, mask))
    return module


class SparseEncoder(nn.Module):
    """The backbone's stages on visible positions only: ``(x (B, C, H, W), active (B, 1, f, f))`` → the stage
    outputs (shallowest first), zero at masked positions. ``backbone`` is a convzoo classifier (``forward_stages``
    and ``feature_info``); the encoder holds a masked copy under the name ``backbone``."""

    def __init__(self, backbone: nn.Module) -> None:
        super().__init__()
        if not hasattr(backbone, "forward_stages") or not hasattr(backbone, "feature_info"):
            raise TypeError(f"spark: the backbone must be a convzoo classifier, got {type(backbone).__name__}")
        self.mask = ActiveMask()
        self.backbone = _masked(copy.deepcopy(backbone), self.mask)
        self.channels = [info.channels for info in backbone.feature_info]
        self.reductions = [info.reduction for info in backbone.feature_info]
        self.downsample = self.reductions[-1]

    def forward(self, x: Tensor, active: Tensor) -> list[Tensor]:
        self.mask.active = active
        try:
            return self.backbone.forward_stages(x * self.mask.at(x.shape[-2:]))
        finally:
            self.mask.active = None


class _UpBlock(nn.Module):
    """×2 transposed conv, then 3×3 conv → BN → ReLU6 → 3×3 conv → BN (the paper's UNet block)."""

    def __init__(self, c_in: int, c_out: int) -> None:
        super().__init__()
        self.up = nn.ConvTranspose2d(c_in, c_in, 4, 2, 1)
        self.conv = nn.Sequential(
            nn.Conv2d(c_in, c_in, 3, padding=1, bias=False),
            nn.BatchNorm2d(c_in),
            nn.ReLU6(inplace=True),
            nn.Conv2d(c_in, c_out, 3, padding=1, bias=False),
            nn.BatchNorm2d(c_out),
        )

    def forward(self, x: Tensor) -> Tensor:
        return self.conv(self.up(x))


class LightDecoder(nn.Module):
    """``log2(upsample)`` up-blocks from ``width`` channels, halving each time, then a 1×1 projection to
    ``out_channels``; ``forward(features)`` takes the densified features deepest first and adds each before the
    block at its resolution (one more, at full resolution, before the projection)."""

    def __init__(self, upsample: int, width: int, out_channels: int) -> None:
        super().__init__()
        blocks = round(math.log2(upsample))
        if 2**blocks != upsample:
            raise ValueError(f"spark: the backbone's total stride must be a power of 2, got {upsample}")
        widths = [width // 2**i for i in range(blocks + 1)]
        self.width = width
        self.blocks = nn.ModuleList(_UpBlock(a, b) for a, b in zip(widths[:-1], widths[1:], strict=True))
        self.proj = nn.Conv2d(widths[-1], out_channels, 1)

    def forward(self, features: list[Tensor]) -> Tensor:
        x = features[0]
        for i, block in enumerate(self.blocks):
            x = block(x)
            if i + 1 < len(features):
                x = x + features[i + 1]
        return self.proj(x)


def random_active(batch: int, grid: tuple[int, int], mask_ratio: float, generator=None) -> Tensor:
    """``(B, 1, *grid)`` bool with ``round(f_h f_w (1 - mask_ratio))`` visible patches per image, uniformly."""
    cells = grid[0] * grid[1]
    keep = round(cells * (1 - mask_ratio))
    order = torch.rand(batch, cells, generator=generator).argsort(1)[:, :keep]  # (B, keep)
    return torch.zeros(batch, cells, dtype=torch.bool).scatter_(1, order, True).view(batch, 1, *grid)


def patchify(x: Tensor, patch: int) -> Tensor:
    """``(B, C, H, W)`` → ``(B, L, p² C)``, ``L = (H/p)(W/p)`` patches in row-major order."""
    b, c, h, w = x.shape
    x = x.reshape(b, c, h // patch, patch, w // patch, patch)  # (B, C, h, p, w, p)
    return x.permute(0, 2, 4, 3, 5, 1).reshape(b, (h // patch) * (w // patch), patch * patch * c)


class SparK(nn.Module):
    """SparK pretraining (S81) around a convzoo classifier: ``forward(x (B, C, H, W), active=None)`` → the masked
    reconstruction loss; ``reconstruct(x, active)`` → ``(B, C, H, W)`` (visible patches from the input).

    ``mask_ratio`` (0.6) of the patches are masked; ``decoder_width`` (default: the deepest encoder width) is the
    decoder's width at the deepest scale, halved at each finer one."""

    def __init__(self, backbone: nn.Module, *, mask_ratio: float = 0.6, decoder_width: int | None = None) -> None:
        super().__init__()
        self.mask_ratio = check_number(mask_ratio, "mask_ratio", "spark", low=0.0, high=1.0, high_open=True)
        in_channels = _in_channels(backbone)
        self.encoder = SparseEncoder(backbone)
        widths = self.encoder.channels[::-1]  # deepest first
        decoder_width = widths[0] if decoder_width is None else check_int(decoder_width, "decoder_width", "spark")
        self.downsample = self.encoder.downsample
        self.densify_norms = nn.ModuleList()
        self.densify_projs = nn.ModuleList()
        self.mask_tokens = nn.ParameterList()
        for i, width in enumerate(widths):
            token = nn.Parameter(torch.zeros(1, width, 1, 1))
            nn.init.trunc_normal_(token, std=0.02, a=-0.02, b=0.02)
            self.mask_tokens.append(token)
            norm = MaskedBatchNorm2d(width)
            norm.mask = self.encoder.mask
            self.densify_norms.append(norm)
            kernel = 1 if i == 0 else 3
            self.densify_projs.append(nn.Conv2d(width, decoder_width // 2**i, kernel, padding=kernel // 2))
        self.decoder = LightDecoder(self.downsample, decoder_width, in_channels)

    def _grid(self, x: Tensor) -> tuple[int, int]:
        h, w = x.shape[-2:]
        if h % self.downsample or w % self.downsample:
            raise ValueError(f"spark: input sides must be multiples of {self.downsample}, got {(h, w)}")
        return h // self.downsample, w // self.downsample

    def _decode(self, x: Tensor, active: Tensor) -> Tensor:
        features = self.encoder(x, active)[::-1]  # deepest first
        dense = []
        self.encoder.mask.active = active
        try:
            for feat, norm, token, proj in zip(
                features, self.densify_norms, self.mask_tokens, self.densify_projs, strict=True
            ):
                visible = self.encoder.mask.at(feat.shape[-2:])
                dense.append(proj(torch.where(visible, norm(feat), token.expand_as(feat))))
        finally:
            self.encoder.mask.active = None
        return self.decoder(dense)

    def forward(self, x: Tensor, active: Tensor | None = None) -> Tensor:
        grid = self._grid(x)
        if active is None:
            active = random_active(x.shape[0], grid, self.mask_ratio).to(x.device)
        prediction = patchify(self._decode(x, active), self.downsample)  # (B, L, p² C)
        target = patchify(x, self.downsample)
        mean = target.mean(-1, keepdim=True)
        std = (target.var(-1, keepdim=True) + 1e-6).sqrt()
        error = (prediction - (target - mean) / std).pow(2).mean(-1)  # (B, L)
        masked = (~active).flatten(1).float()  # (B, L)
        return (error * masked).sum() / masked.sum().clamp(min=1)

    @torch.no_grad()
    def reconstruct(self, x: Tensor, active: Tensor) -> Tensor:
        """The input at visible patches and the de-normalised prediction at masked ones."""
        self._grid(x)
        prediction = patchify(self._decode(x, active), self.downsample)
        target = patchify(x, self.downsample)
        mean, std = target.mean(-1, keepdim=True), (target.var(-1, keepdim=True) + 1e-6).sqrt()
        patches = prediction * std + mean  # (B, L, p² C)
        b, c, h, w = x.shape
        p = self.downsample
        image = patches.view(b, h // p, w // p, p, p, c).permute(0, 5, 1, 3, 2, 4).reshape(b, c, h, w)
        visible = active.repeat_interleave(p, 2).repeat_interleave(p, 3)  # (B, 1, H, W)
        return torch.where(visible, x, image)

    def encoder_state_dict(self) -> dict[str, Tensor]:
        """The pretrained backbone's parameters and buffers under the classifier's own names (no head)."""
        return {k: v for k, v in self.encoder.backbone.state_dict().items() if not k.startswith("head.")}


def _in_channels(backbone: nn.Module) -> int:
    for module in backbone.modules():
        if isinstance(module, nn.Conv2d):
            return module.in_channels
    raise ValueError(f"spark: {type(backbone).__name__} holds no Conv2d to read its input channels from")
