"""Residual VQ (S50): the error falls as stages are added, codes are the brute-force nearest codewords, the EMA
update follows its formula (the ESC codec's shapes and bitrate: tests/models/test_esc_codec.py)."""

from __future__ import annotations

import torch

from convzoo.layers.residual_vq import ResidualVQ


def fitted(stages: int = 6) -> tuple[ResidualVQ, torch.Tensor]:
    torch.manual_seed(0)
    x = torch.randn(4, 8, 256, dtype=torch.float64)  # 1,024 vectors of dimension 8
    vq = ResidualVQ(8, stages, 32, kmeans_iters=10).double().train()
    vq(x)  # first training batch: k-means initialisation
    return vq.eval(), x


def test_reconstruction_error_falls_as_stages_are_added():
    vq, x = fitted()
    errors = [(vq(x, stages=k)[0] - x).square().mean().item() for k in range(1, 7)]
    assert all(later < earlier for earlier, later in zip(errors, errors[1:], strict=False)), errors
    assert errors[-1] < 0.5 * errors[0]


def test_codes_are_the_nearest_codewords_of_each_residual():
    vq, x = fitted(3)
    _, codes, _ = vq(x)
    residual = x.permute(0, 2, 1).reshape(-1, 8).clone()
    for s in range(3):
        expected = torch.tensor(
            [min(range(32), key=lambda k: (r - vq.codebooks[s, k]).square().sum().item()) for r in residual[:64]]
        )  # a plain loop over the first 64 vectors
        assert torch.equal(codes[s].reshape(-1)[:64], expected)
        residual = residual - vq.codebooks[s][codes[s].reshape(-1)]
    torch.testing.assert_close(vq.decode(codes), vq(x)[0])


def test_ema_update_follows_its_formula():
    vq, x = fitted(1)
    vq.train()
    before_counts, before_sums = vq.ema_counts[0].clone(), vq.ema_sums[0].clone()
    flat = x.permute(0, 2, 1).reshape(-1, 8)
    index = vq.nearest(flat, vq.codebooks[0])
    counts = torch.bincount(index, minlength=32).double()
    sums = torch.zeros(32, 8, dtype=torch.float64).index_add_(0, index, flat)
    vq(x)
    ema_counts = 0.99 * before_counts + 0.01 * counts
    ema_sums = 0.99 * before_sums + 0.01 * sums
    total = ema_counts.sum()
    smoothed = (ema_counts + 1e-5) / (total + 32 * 1e-5) * total
    torch.testing.assert_close(vq.codebooks[0], ema_sums / smoothed[:, None], rtol=1e-12, atol=1e-12)
