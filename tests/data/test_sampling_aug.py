import pytest
import torch

from convzoo.data.sampling_aug import SamplingAugDataset, importance_map, integral_image, patch_sums


def test_integral_image_score_equals_brute_force():
    torch.manual_seed(0)
    x = torch.rand(2, 11, 9, dtype=torch.float64)
    size = 4
    fast = patch_sums(x, size)
    slow = torch.empty(2, 11 - size + 1, 9 - size + 1, dtype=torch.float64)
    for i in range(slow.shape[1]):
        for j in range(slow.shape[2]):
            slow[:, i, j] = x[:, i : i + size, j : j + size].sum(dim=(1, 2))
    torch.testing.assert_close(fast, slow)
    torch.testing.assert_close(integral_image(x)[:, -1, -1], x.sum(dim=(1, 2)))


def test_pairs_are_drawn_towards_informative_patches():
    torch.manual_seed(0)
    image = torch.zeros(3, 48, 48)
    image[:, 24:, 24:] = torch.rand(3, 24, 24)  # all the detail is in one corner
    dataset = SamplingAugDataset([image], scale=2, patch=8, length=200, seed=0)
    lr, hr = dataset[0]
    assert lr.shape == (3, 4, 4) and hr.shape == (3, 8, 8)
    detailed = sum(top + 8 > 24 and left + 8 > 24 for _, top, left in dataset.positions)
    uniform = SamplingAugDataset([image], scale=2, patch=8, length=200, seed=0, uniform=True)
    detailed_uniform = sum(top + 8 > 24 and left + 8 > 24 for _, top, left in uniform.positions)
    assert detailed == 200 > detailed_uniform
    assert importance_map(image, 2, 8).shape == (21, 21)


def test_bad_patch_raises():
    with pytest.raises(ValueError, match="patch must be a multiple of the scale 3"):
        SamplingAugDataset([torch.rand(3, 16, 16)], scale=3, patch=8)
