"""Moving digits: short seeded video clips made from the embedded digits, for video snapshot compressive
imaging (S104).

Each clip is one digit (from the digits split asked for, mapped back to [0, 1]) of side ``digit`` pixels moving in
a straight line with a random velocity on a ``size``×``size`` black canvas, bouncing off the borders, for
``frames`` frames: ``(clips, frames, size, size)`` in [0, 1]. Everything is drawn from a generator seeded with
``seed``, so a clip set is reproducible.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from convzoo.core.validate import check_int
from convzoo.data.base import load_dataset

__all__ = ["moving_digits"]


def moving_digits(
    clips: int, frames: int = 8, size: int = 32, digit: int = 16, split: str = "train", seed: int = 0
) -> tuple[Tensor, Tensor]:
    """``(clips, frames, size, size)`` videos in [0, 1] and the ``(clips,)`` digit labels; see the module
    docstring."""
    for value, name in ((clips, "clips"), (frames, "frames"), (size, "size"), (digit, "digit")):
        check_int(value, name, "moving_digits")
    if digit > size:
        raise ValueError(f"moving_digits: digit side {digit} must fit the canvas side {size}")
    data = load_dataset("digits", split)
    mean, std = data.info.mean[0], data.info.std[0]
    generator = torch.Generator().manual_seed(seed)
    pick = torch.randint(0, len(data), (clips,), generator=generator)
    sprites = F.interpolate((data.images[pick] * std + mean).clamp(0, 1), size=(digit, digit), mode="bilinear")
    room = size - digit
    position = torch.rand(clips, 2, generator=generator) * room  # (clips, 2) top-left corner (y, x)
    velocity = (torch.rand(clips, 2, generator=generator) * 2 - 1) * 3  # up to 3 pixels a frame
    video = torch.zeros(clips, frames, size, size)
    for f in range(frames):
        for c in range(clips):
            y, x = (int(round(v)) for v in position[c].tolist())
            video[c, f, y : y + digit, x : x + digit] = sprites[c, 0]
        position = position + velocity
        bounced = (position < 0) | (position > room)
        velocity = torch.where(bounced, -velocity, velocity)
        position = position.clamp(0, room)
    return video, data.labels[pick]
