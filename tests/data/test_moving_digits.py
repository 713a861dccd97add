"""Moving digits (S104 data): seeded clips of digits moving on a canvas."""

import torch

from convzoo.data.moving_digits import moving_digits


def test_moving_digits_are_seeded_and_move():
    video, labels = moving_digits(4, frames=6, seed=3)
    again, _ = moving_digits(4, frames=6, seed=3)
    assert video.shape == (4, 6, 32, 32) and labels.shape == (4,)
    assert torch.equal(video, again) and video.min() >= 0 and video.max() <= 1
    assert not torch.equal(video[:, 0], video[:, -1])  # the digits moved
    assert not torch.equal(video, moving_digits(4, frames=6, seed=4)[0])
