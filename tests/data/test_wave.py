"""The wave simulator (S13's field task): exact discrete standing modes, stability, seeded next-frame pairs."""

from __future__ import annotations

import math

import numpy as np
import pytest

from convzoo.data.base import load_dataset
from convzoo.data.wave import laplacian, simulate


def test_a_standing_mode_follows_the_discrete_dispersion_relation_exactly():
    n, k, l, courant = 15, 2, 3, 0.6
    h = 1.0 / (n + 1)
    grid = np.arange(1, n + 1) * h
    mode = np.outer(np.sin(k * math.pi * grid), np.sin(l * math.pi * grid))  # (y, x): an eigenvector of Δ_h
    eigen = -4 / h**2 * (math.sin(k * math.pi * h / 2) ** 2 + math.sin(l * math.pi * h / 2) ** 2)
    np.testing.assert_allclose(laplacian(mode, h), eigen * mode, atol=1e-9)
    cos_theta = 1 + 0.5 * courant**2 * h**2 * eigen  # leapfrog: a_{t+1} = 2 cosθ a_t − a_{t−1}, a_1 = cosθ a_0
    theta = math.acos(cos_theta)
    frames = simulate(mode, 30, courant)
    for t in range(31):
        np.testing.assert_allclose(frames[t], math.cos(t * theta) * mode, atol=1e-10)


def test_leapfrog_matches_a_loop_and_stays_bounded():
    rng = np.random.default_rng(0)
    u0 = rng.normal(size=(6, 6))
    frames = simulate(u0, 3, 0.5)
    h = 1 / 7
    padded = np.pad(frames[1], 1)
    expected = np.empty((6, 6))
    for y in range(6):
        for x in range(6):
            lap = (
                padded[y, x + 1]
                + padded[y + 2, x + 1]
                + padded[y + 1, x]
                + padded[y + 1, x + 2]
                - 4 * padded[y + 1, x + 1]
            ) / h**2
            expected[y, x] = 2 * frames[1][y, x] - frames[0][y, x] + 0.25 * h**2 * lap
    np.testing.assert_allclose(frames[2], expected, atol=1e-12)
    assert np.abs(simulate(u0, 400, 0.7)).max() < 10 * np.abs(u0).max()  # stable below r = 1/√2


def test_wave_pairs_are_seeded_and_consistent():
    train = load_dataset("wave", "train", size=12, steps=12)
    again = load_dataset("wave", "train", size=12, steps=12)
    test = load_dataset("wave", "test", size=12, steps=12)
    x, y = train[0]
    assert x.shape == (2, 12, 12) and y.shape == (1, 12, 12)
    assert train.inputs.equal(again.inputs) and not train.inputs[:5].equal(test.inputs[:5])
    assert train.inputs[1, 0].equal(train.inputs[0, 1]) and train.targets[0, 0].equal(train.inputs[1, 1])
    with pytest.raises(ValueError, match="courant must be"):
        load_dataset("wave", "train", courant=0.8)
