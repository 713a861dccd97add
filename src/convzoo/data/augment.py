"""Batch augmentations on tensors already on the training device: the ResNet paper's CIFAR pad-crop-flip, and
the symmetries of the square for segmentation sets whose labels ignore orientation.

He et al., "Deep Residual Learning for Image Recognition" (section 4.2): "4 pixels are padded on each side, and a
32×32 crop is randomly sampled from the padded image or its horizontal flip". The images here are standardised, so
the zero padding is the training set's mean colour, as the paper's padding of mean-subtracted images is.
Randomness comes from the global torch RNG (one offset per image, then one flip per image), which the trainer
saves in every checkpoint, so a resumed run draws what the uninterrupted one would.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from convzoo.core.validate import check_int

__all__ = ["DIHEDRAL_CHOICES", "random_crop", "random_crop_flip", "random_dihedral"]

DIHEDRAL_CHOICES = ("none", "dihedral")  # the augment option of the tasks whose labels ignore orientation (seg, sr)


def random_crop(images: Tensor, pad: int) -> Tensor:
    """A random ``H×W`` crop of each ``pad``-zero-padded image of ``(B, C, H, W)`` (offsets uniform in
    ``[0, 2·pad]`` along each axis, one pair per image)."""
    check_int(pad, "pad", "random_crop", low=0)
    if images.dim() != 4:
        raise ValueError(f"random_crop: expected (B, C, H, W) images, got shape {tuple(images.shape)}")
    if pad == 0:
        return images
    batch, channels, height, width = images.shape
    padded = F.pad(images, (pad, pad, pad, pad))  # (B, C, H + 2p, W + 2p)
    offsets = torch.randint(0, 2 * pad + 1, (batch, 2)).to(images.device)  # (B, 2): row, column
    rows = offsets[:, :1] + torch.arange(height, device=images.device)  # (B, H)
    cols = offsets[:, 1:] + torch.arange(width, device=images.device)  # (B, W)
    b = torch.arange(batch, device=images.device).view(batch, 1, 1, 1)
    c = torch.arange(channels, device=images.device).view(1, channels, 1, 1)
    return padded[b, c, rows.view(batch, 1, height, 1), cols.view(batch, 1, 1, width)]  # (B, C, H, W)


def random_crop_flip(images: Tensor, pad: int = 4) -> Tensor:
    """:func:`random_crop`, then each image mirrored left–right with probability ½."""
    cropped = random_crop(images, pad)
    flip = (torch.rand(images.shape[0]) < 0.5).to(images.device).view(-1, 1, 1, 1)
    return torch.where(flip, cropped.flip(-1), cropped)


def random_dihedral(*batches: Tensor) -> tuple[Tensor, ...]:
    """Each example of the ``batches`` (tensors ``(B, ..., H, W)`` with one batch size, e.g. images and their
    masks, or low- and high-resolution views) turned by one of the 8 symmetries of the square — mirror left–right,
    mirror top–bottom, swap the axes: each with probability ½ — the same for every tensor of the example; for
    labels that do not depend on orientation (the ``shapes`` set, super-resolution pairs). Swapping needs square
    tensors."""
    if not batches or any(b.dim() < 3 or b.shape[0] != batches[0].shape[0] for b in batches):
        shapes = ", ".join(str(tuple(b.shape)) for b in batches)
        raise ValueError(f"random_dihedral: expected tensors (B, ..., H, W) of one batch size B, got {shapes}")
    square = all(b.shape[-1] == b.shape[-2] for b in batches)
    moves = (torch.rand(batches[0].shape[0], 3) < 0.5).tolist()  # (B, 3): mirror W, mirror H, swap the axes
    turned: list[list[Tensor]] = [[] for _ in batches]
    for index, (mirror_w, mirror_h, swap) in enumerate(moves):
        for out, batch in zip(turned, batches, strict=True):
            example = batch[index]
            if mirror_w:
                example = example.flip(-1)
            if mirror_h:
                example = example.flip(-2)
            if swap and square:
                example = example.transpose(-1, -2)
            out.append(example)
    return tuple(torch.stack(out) for out in turned)
