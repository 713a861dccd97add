"""The ResNet paper's CIFAR augmentation: crops of the padded image equal slicing by hand; flips mirror."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from convzoo.data.augment import random_crop, random_crop_flip


def _by_hand(images, pad, seed, flip):
    """Pad each image with zeros, slice the window at the drawn offsets, mirror the drawn ones: one at a time."""
    torch.manual_seed(seed)
    offsets = torch.randint(0, 2 * pad + 1, (images.shape[0], 2)).tolist()
    flips = (torch.rand(images.shape[0]) < 0.5).tolist() if flip else [False] * images.shape[0]
    height, width = images.shape[-2:]
    out = []
    for image, (y, x), mirrored in zip(images, offsets, flips, strict=True):
        padded = F.pad(image, (pad, pad, pad, pad))
        window = padded[:, y : y + height, x : x + width]
        out.append(window.flip(-1) if mirrored else window)
    return torch.stack(out)


@pytest.mark.parametrize("pad", [1, 4])
def test_crop_and_flip_equal_slicing_each_padded_image_by_hand(pad):
    images = torch.randn(16, 3, 9, 7, dtype=torch.float64)
    torch.manual_seed(5)
    cropped = random_crop(images, pad)
    assert torch.equal(cropped, _by_hand(images, pad, seed=5, flip=False))
    torch.manual_seed(6)
    augmented = random_crop_flip(images, pad)
    assert torch.equal(augmented, _by_hand(images, pad, seed=6, flip=True))


def test_every_offset_and_both_orientations_occur_and_pad_zero_is_the_identity():
    images = torch.arange(25.0).view(1, 1, 5, 5).expand(400, 1, 5, 5)
    torch.manual_seed(0)
    augmented = random_crop_flip(images, 1)
    assert len(set(augmented[:, 0, 2, 2].tolist())) == 9  # the centre pixel shows each of the 3 × 3 offsets
    rows = augmented[:, 0, 2, 1:4]  # the centre row's middle: increasing as stored, decreasing when mirrored
    mirrored = (rows[:, 0] > rows[:, 2]).float().mean().item()
    assert 0.4 < mirrored < 0.6
    assert torch.equal(random_crop(images, 0), images)


def test_bad_input_is_refused_naming_it():
    with pytest.raises(ValueError, match=r"random_crop: pad must be an int ≥ 0, got -1"):
        random_crop(torch.zeros(1, 1, 4, 4), -1)
    with pytest.raises(ValueError, match=r"expected \(B, C, H, W\) images, got shape \(4, 4\)"):
        random_crop(torch.zeros(4, 4), 2)


def test_dihedral_turns_image_and_mask_alike_through_all_eight_symmetries():
    from convzoo.data.augment import random_dihedral

    image = torch.arange(16.0).view(1, 1, 4, 4)
    images, masks = image.expand(200, 2, 4, 4), image[0, 0].long().expand(200, 4, 4)
    torch.manual_seed(0)
    turned, turned_masks = random_dihedral(images, masks)
    assert torch.equal(turned[:, 0].long(), turned_masks) and torch.equal(turned[:, 0], turned[:, 1])
    by_hand = set()
    for k in range(4):  # the 8 symmetries: 4 rotations, each with and without a mirror
        rotated = torch.rot90(image[0, 0], k)
        by_hand |= {tuple(rotated.flatten().tolist()), tuple(rotated.flip(-1).flatten().tolist())}
    seen = {tuple(t.flatten().tolist()) for t in turned[:, 0]}
    assert seen == by_hand
    with pytest.raises(ValueError, match=r"expected tensors \(B, ..., H, W\) of one batch size B, got"):
        random_dihedral(images, masks[:7])


def test_dihedral_keeps_low_and_high_resolution_pairs_in_register():
    from convzoo.data.augment import random_dihedral

    hr = torch.rand(64, 3, 8, 8, dtype=torch.float64)
    lr = F.avg_pool2d(hr, 2)  # (64, 3, 4, 4): each LR pixel is the mean of its HR block
    torch.manual_seed(1)
    turned_lr, turned_hr = random_dihedral(lr, hr)
    assert torch.allclose(turned_lr, F.avg_pool2d(turned_hr, 2), atol=1e-15)  # still each other's down-scale
    assert not torch.equal(turned_hr, hr)


def test_sr_task_takes_the_augment_option():
    from convzoo.train.task import get_task

    task = get_task("sr")
    assert task.resolve_options({"augment": "dihedral"})["augment"] == "dihedral"
    with pytest.raises(ValueError, match=r"augment must be one of 'none', 'dihedral', got 'rot'"):
        task.resolve_options({"augment": "rot"})
