"""The diffusion loop (S37, S63): forward process against the composed Markov chain, DDIM/DDPM steps against
hand-derived posteriors, classifier-free guidance against a hand-computed case, the Fréchet distance against an
affine identity, and the diffusion task: its loss falls on digits and ``--resume`` continues exactly."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

from convzoo.data.base import TensorImageDataset
from convzoo.train import TrainConfig, train
from convzoo.train.diffusion import GaussianDiffusion, cfg_eps, frechet_distance, sample
from convzoo.train.task import get_task

TINY = {"hidden_size": 8, "depth": [1, 1, 1, 1, 1], "skip_stride": 1}


def test_q_sample_is_the_composed_forward_chain():
    """x_t = √(1−β_t) x_{t−1} + √β_t ε composed t times: mean coefficient ∏√(1−β), variance by the recursion."""
    diffusion = GaussianDiffusion()
    mean, variance = 1.0, 0.0
    for t in range(diffusion.timesteps):
        beta = 1e-4 + (0.02 - 1e-4) * t / (diffusion.timesteps - 1)
        mean, variance = mean * math.sqrt(1 - beta), (1 - beta) * variance + beta
        if t in (0, 10, 500, 999):
            index = torch.tensor([t])
            one, zero = torch.ones(1, 1, dtype=torch.float64), torch.zeros(1, 1, dtype=torch.float64)
            assert diffusion.q_sample(one, index, zero).item() == pytest.approx(mean, rel=1e-12)
            assert diffusion.q_sample(zero, index, one).item() == pytest.approx(math.sqrt(variance), rel=1e-12)


def _oracle_eps(diffusion, x, x0, t):
    a = diffusion.alphas_cumprod[t].item()
    return (x - math.sqrt(a) * x0) / math.sqrt(1 - a)


def test_ddim_with_the_true_noise_returns_the_data_point():
    diffusion = GaussianDiffusion()
    x0 = torch.randn(3, 4, dtype=torch.float64)
    x = torch.randn(3, 4, dtype=torch.float64)
    timesteps = diffusion.spaced(7)
    for t, t_prev in zip(timesteps, [*timesteps[1:], -1], strict=True):
        x = diffusion.ddim_step(x, _oracle_eps(diffusion, x, x0, t), t, t_prev, 0.0, None)
    torch.testing.assert_close(x, x0, rtol=1e-9, atol=1e-9)


def test_ddpm_step_is_the_bayes_posterior_and_ddim_with_eta_one():
    """q(x_s | x_t, x₀) ∝ N(x_t; √(ᾱ_t/ᾱ_s) x_s, 1 − ᾱ_t/ᾱ_s) · N(x_s; √ᾱ_s x₀, 1 − ᾱ_s), by precision weighting."""
    diffusion = GaussianDiffusion()
    x0, xt = torch.tensor([0.7], dtype=torch.float64), torch.tensor([-0.3], dtype=torch.float64)
    for t, s in ((999, 949), (500, 499), (20, 0)):
        a_t, a_s = diffusion.alphas_cumprod[t].item(), diffusion.alphas_cumprod[s].item()
        ratio = a_t / a_s
        precision = 1 / (1 - a_s) + ratio / (1 - ratio)
        mean = (math.sqrt(a_s) * x0.item() / (1 - a_s) + math.sqrt(ratio) * xt.item() / (1 - ratio)) / precision
        eps = _oracle_eps(diffusion, xt, x0, t)
        one = torch.ones(1, dtype=torch.float64)
        assert diffusion.ddpm_step(xt, eps, t, s, None).item() == pytest.approx(mean, rel=1e-9)
        drawn = diffusion.ddpm_step(xt, eps, t, s, one).item()
        assert drawn - mean == pytest.approx(math.sqrt(1 / precision), rel=1e-9)
        assert diffusion.ddim_step(xt, eps, t, s, 1.0, one).item() == pytest.approx(drawn, rel=1e-9)


def test_cfg_formula_by_hand():
    uncond, cond = torch.tensor([1.0, 2.0]), torch.tensor([3.0, -2.0])
    assert cfg_eps(cond, uncond, 1.5).tolist() == [4.0, -4.0]  # 1 + 1.5·2, 2 + 1.5·(−4)
    assert cfg_eps(cond, uncond, 1.0).tolist() == cond.tolist()
    assert cfg_eps(cond, uncond, 0.0).tolist() == uncond.tolist()


class _PerLabel(nn.Module):
    """Predicts the constant noise ``table[label]`` whatever the input (label 2 is the null one)."""

    def __init__(self) -> None:
        super().__init__()
        self.table = nn.Parameter(torch.tensor([[0.5], [-1.0], [0.25]]), requires_grad=False)

    def forward(self, x, t, y):
        return self.table[y].view(-1, 1, 1, 1).expand_as(x)


def test_sampling_applies_guidance_to_the_model_outputs():
    diffusion, model = GaussianDiffusion(), _PerLabel()
    labels = torch.tensor([0, 1])
    got = sample(model, diffusion, labels, (1, 1, 1), steps=1, guidance=3.0, null_label=2, eta=0.0,
                 generator=torch.Generator().manual_seed(5))  # fmt: skip
    x = torch.randn((2, 1, 1, 1), generator=torch.Generator().manual_seed(5))
    a = diffusion.alphas_cumprod[999].item()
    for i, label in enumerate((0, 1)):
        eps = 0.25 + 3.0 * (model.table[label].item() - 0.25)
        expected = (x[i].item() - math.sqrt(1 - a) * eps) / math.sqrt(a)
        assert got[i].item() == pytest.approx(max(-1.0, min(1.0, expected)), rel=1e-5)


def test_spaced_timesteps_and_bad_arguments():
    diffusion = GaussianDiffusion()
    assert diffusion.spaced(1) == [999] and diffusion.spaced(4) == [999, 666, 333, 0]
    assert diffusion.spaced(1000) == list(range(999, -1, -1))
    with pytest.raises(ValueError, match="steps must be ≤ 1000"):
        diffusion.spaced(1001)
    with pytest.raises(ValueError, match="method must be"):
        sample(_PerLabel(), diffusion, torch.tensor([0]), (1, 1, 1), method="euler", null_label=2)


def test_frechet_distance_of_an_affine_copy():
    """b = 2a + 1: Σ_b = 4Σ_a, so FD = ‖μ_a + 1‖² + Tr(Σ_a + 4Σ_a − 2·2Σ_a) = ‖μ_a + 1‖² + Tr Σ_a."""
    a = np.random.default_rng(0).normal(size=(500, 6)) @ np.diag([1.0, 2.0, 0.5, 1.0, 3.0, 0.1])
    expected = ((a.mean(0) + 1) ** 2).sum() + np.trace(np.cov(a, rowvar=False))
    assert frechet_distance(a, 2 * a + 1) == pytest.approx(expected, rel=1e-6)
    assert abs(frechet_distance(a, a)) < 1e-6


def _config(out, epochs):
    return TrainConfig(
        model="dic_s", task="diffusion", data="digits", epochs=epochs, batch_size=256, cfg=TINY, out=str(out),
        progress=False, ema_decay=0.9,
    )  # fmt: skip


def test_a_few_steps_lower_the_noise_prediction_loss():
    """The catalog's "trains a tiny DDPM on digits; loss falls", in 25 steps of the task's own step."""
    from convzoo.train.task import get_task

    torch.manual_seed(0)
    task = get_task("diffusion")
    config = TrainConfig(model="dic_s", task="diffusion", cfg=TINY, progress=False)
    data = task.load("digits", "train", None, config.options)
    model = task.create(task.architecture(config, data.info))
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3, weight_decay=0.0)
    images, labels = data.images[:32], data.labels[:32]
    assert images.min() >= -1 and images.max() <= 1 and images.shape[1:] == (1, 32, 32)
    data = TensorImageDataset(data.images[:128], data.labels[:128], data.info)
    before = task.evaluate(model.eval(), data, torch.device("cpu"))["loss"]
    model.train()
    for _ in range(25):
        loss, _ = task.step(model, (images, labels), config)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    after = task.evaluate(model.eval(), data, torch.device("cpu"))["loss"]
    assert before == pytest.approx(1.0, abs=0.05)  # a zeroed output layer predicts ε = 0: E[ε²] = 1
    assert after < 0.6 * before


@pytest.mark.slow
def test_loss_falls_over_epochs_and_resume_continues_exactly(tmp_path):
    whole = train(_config(tmp_path / "whole", 2))
    losses = [r["test_loss"] for r in whole.history]
    assert losses[1] < losses[0] < 1.0 and whole.history[1]["train_loss"] < whole.history[0]["train_loss"]
    stopped = train(_config(tmp_path / "split", 2), on_epoch_end=lambda record: False)
    assert len(stopped.history) == 1
    resumed = train(_config(tmp_path / "split", 2), resume=True)
    for (name, a), b in zip(whole.model.state_dict().items(), resumed.model.state_dict().values(), strict=True):
        assert torch.equal(a, b), name
    assert [r["test_loss"] for r in resumed.history] == losses


def test_clipped_prediction_stays_in_range_and_agrees_with_its_noise():
    diffusion = GaussianDiffusion()
    x, eps = torch.full((1, 3), 0.5, dtype=torch.float64), torch.tensor([[-3.0, 0.0, 3.0]], dtype=torch.float64)
    x0, eps_clipped = diffusion.predict_x0(x, eps, 900, clip=True)
    assert x0.abs().max() <= 1 and x0[0, 0] == 1 and x0[0, 2] == -1
    a = diffusion.alphas_cumprod[900].item()
    torch.testing.assert_close(math.sqrt(a) * x0 + math.sqrt(1 - a) * eps_clipped, x)  # still explains x_t


def test_size_option_denoises_the_digits_scans_and_decodes_them_as_the_data_was_made():
    from sklearn.datasets import load_digits as sklearn_digits

    from convzoo.train.diffusion import decode

    task = get_task("diffusion")
    full = task.load("digits", "test", None, task.resolve_options({}))
    small = task.load("digits", "test", None, task.resolve_options({"size": 8}))
    assert small.images.shape[1:] == (1, 8, 8) and small.info.extra["output_size"] == 32
    blocks = full.images.view(-1, 1, 8, 4, 8, 4).mean(dim=(3, 5))  # each 4×4 block averaged by hand
    assert torch.allclose(small.images, blocks, atol=1e-6)
    # decoding a raw 8×8 scan in [−1, 1] gives the 32×32 digits image exactly (the map that made the data)
    scans = torch.from_numpy(sklearn_digits().images).float().div(16).unsqueeze(1) * 2 - 1  # (1797, 1, 8, 8)
    decoded = decode(scans, 32)  # (1797, 1, 32, 32)
    gaps = torch.cdist(full.images[:50].flatten(1).double(), decoded.flatten(1).double(), p=float("inf"))
    assert gaps.min(dim=1).values.max() < 1e-5  # each test image is the decoding of one scan
    with pytest.raises(ValueError, match=r"size 5 must divide the data's 32×32 images"):
        task.load("digits", "test", None, task.resolve_options({"size": 5}))


def test_a_small_size_checkpoint_samples_at_the_datas_size(tmp_path):
    from convzoo.train.diffusion import load_sampler

    config = TrainConfig(
        model="dic_s", task="diffusion", options={"size": 8}, cfg={"hidden_size": 8, "depth": (1, 1, 1, 1, 1)},
        epochs=1, batch_size=256, out=str(tmp_path), progress=False,
    )  # fmt: skip
    train(config)
    sampler = load_sampler(str(tmp_path / "checkpoint"))
    assert sampler.shape == (1, 8, 8) and sampler.output_size == 32
    assert sampler.decode(torch.zeros(2, 1, 8, 8)).shape == (2, 1, 32, 32)
